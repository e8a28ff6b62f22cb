//! The engine end to end on a tiny generated llama whose weights use every
//! supported format: streaming loads, batched prefill, KV-cache reuse,
//! generation limits, scoring and errors.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{tiny_gemma, tiny_llama};
use webslm::sampler::SamplerConfig;
use webslm::session::{FinishReason, Loader, Progress};
use webslm::{cpu::Cpu, Error, GenerateOptions, LoadOptions, Message, Session};

fn session() -> Session {
    Session::load_bytes(&tiny_llama(), LoadOptions::default()).unwrap()
}

/// Logits predicting `tokens[from..]` (via scoring with the whole vocabulary).
fn logits_from(s: &mut Session, tokens: &[u32], from: usize) -> Vec<Vec<f32>> {
    let n = s.hparams().n_vocab;
    let score = s.score(tokens, from, n).unwrap();
    score
        .tokens
        .iter()
        .map(|t| {
            let mut row = vec![0.0; n];
            for c in &t.top {
                row[c.id as usize] = c.logit;
            }
            row
        })
        .collect()
}

fn all_logits(s: &mut Session, tokens: &[u32]) -> Vec<Vec<f32>> {
    logits_from(s, tokens, 1)
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

const TEXT: &str = "hello there, the tiny model speaks";

#[test]
fn chunk_size_does_not_change_the_model() {
    let bytes = tiny_llama();
    let mut reference = session();
    let tokens = reference.tokenize(TEXT, true).unwrap();
    let expected = all_logits(&mut reference, &tokens);
    for chunk in [1, 7, 4096, 65536] {
        let mut loader = Loader::new(Cpu::default(), bytes.len() as u64, LoadOptions::default());
        for c in bytes.chunks(chunk) {
            loader.push(c).unwrap();
        }
        assert_eq!(loader.position(), bytes.len() as u64);
        let mut s = loader.finish().unwrap();
        assert_eq!(all_logits(&mut s, &tokens), expected, "chunks of {chunk} bytes");
    }
}

#[test]
fn batched_prefill_equals_one_token_at_a_time() {
    let mut s = session();
    let tokens = s.tokenize(TEXT, true).unwrap();
    assert!(tokens.len() > 10);
    let batched = all_logits(&mut s, &tokens);
    let mut step = session();
    let mut sequential = Vec::new();
    for end in 2..=tokens.len() {
        // Each call extends the cached prefix by one token, so it computes one position.
        sequential.extend(logits_from(&mut step, &tokens[..end], end - 1));
        assert_eq!(step.stats().prompt_tokens - step.stats().reused_tokens, 1);
    }
    let d = max_diff(&batched, &sequential);
    // Same kernels, different batch shapes: only float summation order differs.
    assert!(d < 1e-4, "batched and sequential logits differ by {d}");
}

#[test]
fn logits_are_finite_and_not_flat() {
    let mut s = session();
    let tokens = s.tokenize(TEXT, true).unwrap();
    for row in all_logits(&mut s, &tokens) {
        assert!(row.iter().all(|v| v.is_finite()));
        let (min, max) = row.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(max - min > 0.1, "logits are flat: {min}..{max}");
    }
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens, ..GenerateOptions::default() }
}

#[test]
fn generation_respects_max_tokens_and_is_deterministic() {
    let mut a = session();
    let pieces: Vec<_> = a.generate_text("hello", greedy(12)).unwrap().collect();
    assert!(pieces.len() <= 12);
    if pieces.len() < 12 {
        assert_eq!(a.stats().finish_reason, Some(FinishReason::EndOfGeneration));
    } else {
        assert_eq!(a.stats().finish_reason, Some(FinishReason::MaxTokens));
    }
    let mut b = session();
    let again: Vec<_> = b.generate_text("hello", greedy(12)).unwrap().collect();
    assert_eq!(pieces, again);

    let sampled = |seed| {
        let mut s = session();
        let options = GenerateOptions {
            max_tokens: 20,
            sampler: SamplerConfig { temperature: 1.5, seed, ..SamplerConfig::default() },
            ..GenerateOptions::default()
        };
        s.generate_text("hello", options).unwrap().map(|p| p.token).collect::<Vec<_>>()
    };
    assert_eq!(sampled(1), sampled(1));
    assert_ne!(sampled(1), sampled(2));
}

#[test]
fn the_text_of_the_pieces_is_the_detokenized_tokens() {
    let mut s = session();
    let options = GenerateOptions {
        max_tokens: 40,
        sampler: SamplerConfig { temperature: 2.0, seed: 5, ..SamplerConfig::default() },
        ..GenerateOptions::default()
    };
    let pieces: Vec<_> = s.generate_text("the", options).unwrap().collect();
    let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
    let tokens: Vec<u32> = pieces.iter().map(|p| p.token).filter(|&t| !s.tokenizer().is_eog(t)).collect();
    assert_eq!(text, String::from_utf8_lossy(&s.tokenizer().decode(&tokens, false)));
}

#[test]
fn a_second_request_extending_the_first_reuses_the_cache() {
    let mut s = session();
    let first = s.tokenize("hello there", true).unwrap();
    let generated: Vec<u32> = s.generate(&first, greedy(5)).unwrap().map(|p| p.token).collect();
    let fed = first.len() + generated.len() - 1;
    assert_eq!(s.stats().reused_tokens, 0);

    let mut second = first.clone();
    second.extend(&generated);
    second.extend(s.tokenize(" and more", false).unwrap());
    let continued: Vec<u32> = s.generate(&second, greedy(5)).unwrap().map(|p| p.token).collect();
    assert_eq!(s.stats().reused_tokens, fed);
    assert_eq!(s.stats().prompt_tokens, second.len());

    let mut fresh = session();
    let expected: Vec<u32> = fresh.generate(&second, greedy(5)).unwrap().map(|p| p.token).collect();
    assert_eq!(continued, expected);
    assert_eq!(fresh.stats().reused_tokens, 0);

    // A diverging request keeps only the common prefix.
    let mut other = first[..3].to_vec();
    other.extend(s.tokenize(" different", false).unwrap());
    s.generate(&other, greedy(1)).unwrap().for_each(drop);
    assert_eq!(s.stats().reused_tokens, 3);
}

/// The tiny gemma3 (window 4) with batches of at most 3: its local layers
/// keep rings of 6 positions, and it gives the logits of a cache of every
/// position. A request may drop up to 3 cached positions and reuse the
/// rest; one that drops more starts over (the ring no longer holds the keys
/// its first position reads), and both give a fresh session's logits.
#[test]
fn a_gemma3_with_rings_reuses_the_cache_only_as_far_back_as_they_hold() {
    let rings =
        || Session::load_bytes(&tiny_gemma(), LoadOptions { max_batch: Some(3), ..Default::default() }).unwrap();
    let mut full = Session::load_bytes(&tiny_gemma(), LoadOptions::default()).unwrap();
    let mut s = rings();
    let info = (s.info().kv_cache_bytes, full.info().kv_cache_bytes);
    // 7 layers of 128 positions of 32 keys and 32 values in f16; 6 local ones of 6.
    assert_eq!(info, ((128 + 6 * 6) * 128, 7 * 128 * 128));
    let tokens: Vec<u32> = (0..40).map(|i| 3 + (i * 37) % 250).collect();
    let d = max_diff(&all_logits(&mut s, &tokens), &all_logits(&mut full, &tokens));
    assert!(d < 1e-4, "rings and a full cache differ by {d}");
    for (common, reused) in [(36, 36), (30, 0)] {
        let mut other = tokens[..common].to_vec();
        other.extend([7, 9, 11]);
        let n = other.len() - 1;
        let got = logits_from(&mut s, &other, n);
        assert_eq!(s.stats().reused_tokens, reused, "sharing {common} tokens");
        assert_eq!(got, logits_from(&mut rings(), &other, n), "sharing {common} tokens");
        all_logits(&mut s, &tokens);
    }
}

#[test]
fn chat_uses_the_template_and_a_second_turn_prefills_only_the_new_part() {
    let mut s = session();
    let mut messages = vec![Message::new("user", "hello")];
    let first = s.chat_tokens(&messages).unwrap();
    assert_eq!(s.detokenize(&first), "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n");
    let pieces: Vec<_> = s.chat(&messages, greedy(6)).unwrap().collect();
    // What the cache holds: the prompt and every generated token but the last.
    let mut cached = first.clone();
    cached.extend(pieces.iter().map(|p| p.token).take(pieces.len() - 1));

    messages.push(Message::new("assistant", pieces.iter().map(|p| p.text.as_str()).collect::<String>()));
    messages.push(Message::new("user", "the end"));
    let second = s.chat_tokens(&messages).unwrap();
    s.chat(&messages, greedy(3)).unwrap().for_each(drop);
    let common = cached.iter().zip(&second).take_while(|(a, b)| a == b).count();
    assert!(common >= first.len(), "the second turn starts with the first");
    assert_eq!(s.stats().prompt_tokens, second.len());
    assert_eq!(s.stats().reused_tokens, common, "only the new part is prefilled");
}

#[test]
fn stop_strings_end_generation_without_emitting_them() {
    let mut s = session();
    let free: String = s.generate_text("the", greedy(30)).unwrap().map(|p| p.text).collect();
    // Stop on a piece of what greedy decoding says anyway.
    let chars: Vec<char> = free.chars().collect();
    assert!(chars.len() > 6, "tiny model said {free:?}");
    let stop: String = chars[4..6].iter().collect();
    let options = GenerateOptions { stop: vec![stop.clone()], ..greedy(30) };
    let text: String = s.generate_text("the", options).unwrap().map(|p| p.text).collect();
    assert_eq!(s.stats().finish_reason, Some(FinishReason::Stop));
    assert_eq!(text, free[..free.find(&stop).unwrap()]);
}

#[test]
fn prompts_past_the_context_are_refused_and_generation_stops_at_the_end() {
    let mut s =
        Session::load_bytes(&tiny_llama(), LoadOptions { context_length: Some(16), ..Default::default() }).unwrap();
    assert_eq!(s.info().context_length, 16);
    let long = s.tokenize(&"hello there ".repeat(10), true).unwrap();
    assert!(long.len() > 16);
    match s.generate(&long, greedy(4)) {
        Err(e @ Error::ContextOverflow { .. }) => assert_eq!(e.code(), "CONTEXT_OVERFLOW"),
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("a prompt past the context was accepted"),
    }
    let prompt = &long[..12];
    let n = s.generate(prompt, greedy(100)).unwrap().count();
    let reason = s.stats().finish_reason;
    assert!(
        reason == Some(FinishReason::ContextFull) && n == 16 - 12 + 1 || reason == Some(FinishReason::EndOfGeneration),
        "{n} tokens, {reason:?}"
    );
    // The session is still usable.
    assert!(s.generate(&long[..4], greedy(2)).unwrap().count() > 0);
}

#[test]
fn bad_requests_are_typed_errors() {
    let mut s = session();
    let n = s.hparams().n_vocab as u32;
    assert!(matches!(s.generate(&[1, n + 5], greedy(2)), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.generate(&[], greedy(2)), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.score(&[1, 2], 0, 3), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.score(&[1, 2], 2, 3), Err(Error::InvalidArgument(_))));
}

#[test]
fn scores_are_log_probabilities() {
    let mut s = session();
    let tokens = s.tokenize(TEXT, true).unwrap();
    let score = s.score(&tokens, 2, 5).unwrap();
    assert_eq!(score.tokens.len(), tokens.len() - 2);
    let mut nll = 0.0;
    for (t, &id) in score.tokens.iter().zip(&tokens[2..]) {
        assert_eq!(t.id, id);
        assert!(t.logprob <= 0.0);
        assert_eq!(t.top.len(), 5);
        assert!(t.top.windows(2).all(|w| w[0].logit >= w[1].logit));
        let total: f32 = t.top.iter().map(|c| c.logprob.exp()).sum();
        assert!(total <= 1.0 + 1e-4);
        for c in &t.top {
            assert!((c.logit - c.logprob - (t.logit - t.logprob)).abs() < 1e-3, "one normalizer per position");
        }
        nll -= t.logprob as f64;
    }
    let ppl = (nll / score.tokens.len() as f64).exp();
    assert!((score.perplexity - ppl).abs() < 1e-6 * ppl);
}

#[test]
fn no_chat_template_is_a_clear_error() {
    // Same-length rename of the key hides the template.
    let mut bytes = tiny_llama();
    let key = b"tokenizer.chat_template";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at..at + key.len()].copy_from_slice(b"tokenizer.chat_templatX");
    let mut s = Session::load_bytes(&bytes, LoadOptions::default()).unwrap();
    let messages = [Message::new("user", "hi")];
    match s.chat(&messages, greedy(1)) {
        Err(e @ Error::ChatTemplate(_)) => assert!(e.to_string().contains("no chat template"), "{e}"),
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("chat without a template"),
    }
    assert!(s.generate_text("hello", greedy(1)).is_ok());
}

/// A generation begun with [`Session::begin`] runs its prompt a batch per
/// [`Session::prefill`], reporting how far it got, and generates what
/// `generate` does; dropped between batches, it leaves the cache holding
/// exactly the batches that ran, which the next request reuses.
#[test]
fn a_prompt_prefilled_batch_by_batch_reports_progress_and_can_stop_between_batches() {
    let batched = || Session::load_bytes(&tiny_llama(), LoadOptions { max_batch: Some(5), ..LoadOptions::default() });
    let mut s = batched().unwrap();
    let prompt = s.tokenize(TEXT, true).unwrap();
    assert!(prompt.len() > 8 && prompt.len() % 5 != 0, "{} tokens", prompt.len());
    let expected: Vec<u32> = batched().unwrap().generate(&prompt, greedy(6)).unwrap().map(|p| p.token).collect();

    let mut g = s.begin(&prompt, greedy(6)).unwrap();
    let mut done = Vec::new();
    while let Some(p) = s.prefill(&mut g) {
        assert_eq!(p.total, prompt.len());
        done.push(p.done);
    }
    let mut steps: Vec<usize> = (5..prompt.len()).step_by(5).collect();
    steps.push(prompt.len());
    assert_eq!(done, steps);
    assert!(!g.is_finished());
    let tokens: Vec<u32> = std::iter::from_fn(|| s.step(&mut g).unwrap()).map(|p| p.token).collect();
    assert_eq!(tokens, expected);

    let mut s = batched().unwrap();
    let mut g = s.begin(&prompt, greedy(6)).unwrap();
    assert_eq!(s.prefill(&mut g), Some(Progress { done: 5, total: prompt.len() }));
    drop(g);
    let again: Vec<u32> = s.generate(&prompt, greedy(6)).unwrap().map(|p| p.token).collect();
    assert_eq!(s.stats().reused_tokens, 5);
    assert_eq!(again, expected);

    // Stepping a generation whose prompt is not all in runs the rest of it first.
    let mut g = s.begin(&prompt, greedy(6)).unwrap();
    let tokens: Vec<u32> = std::iter::from_fn(|| s.step(&mut g).unwrap()).map(|p| p.token).collect();
    assert_eq!(tokens, expected);
}
