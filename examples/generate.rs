//! A developer tool: generate, chat or score with a GGUF model on the CPU.
//!
//! ```text
//! cargo run --release --example generate -- --model M (--prompt P | --chat P) [--system S]
//!     [--max-tokens N] [--temperature T] [--seed S] [--top-k K] [--top-p P] [--min-p P]
//!     [--repeat-penalty R] [--stop S]... [--context N] [--json]
//! cargo run --release --example generate -- --model M --score --prompt-ids 1,2,3 --continuation-ids 4,5 [--top-k K]
//! ```
//! Timings go to stderr; with `--json` stdout is one JSON object.

use std::io::Write;
use std::process::ExitCode;
use webslm::session::Score;
use webslm::{GenerateOptions, LoadOptions, Message, SamplerConfig, Session};

#[derive(Default)]
struct Args {
    model: String,
    prompt: Option<String>,
    chat: Option<String>,
    system: Option<String>,
    score: bool,
    prompt_ids: Vec<u32>,
    continuation_ids: Vec<u32>,
    json: bool,
    context: Option<usize>,
    options: GenerateOptions,
}

const USAGE: &str =
    "usage: generate --model M (--prompt P | --chat P | --score --prompt-ids 1,2 --continuation-ids 3,4) \
[--system S] [--max-tokens N] [--temperature T] [--seed S] [--top-k K] [--top-p P] [--min-p P] \
[--repeat-penalty R] [--stop S]... [--context N] [--json]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    args.options.sampler = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
    args.options.max_tokens = 128;
    let mut top_k = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: `{v}` is not a number"))
        }
        fn ids(flag: &str, v: String) -> Result<Vec<u32>, String> {
            v.split(',').filter(|s| !s.trim().is_empty()).map(|s| num(flag, s.trim().to_string())).collect()
        }
        let s = &mut args.options.sampler;
        match flag.as_str() {
            "--model" => args.model = value()?,
            "--prompt" => args.prompt = Some(value()?),
            "--chat" => args.chat = Some(value()?),
            "--system" => args.system = Some(value()?),
            "--score" => args.score = true,
            "--prompt-ids" => args.prompt_ids = ids(&flag, value()?)?,
            "--continuation-ids" => args.continuation_ids = ids(&flag, value()?)?,
            "--json" => args.json = true,
            "--context" => args.context = Some(num(&flag, value()?)?),
            "--max-tokens" => args.options.max_tokens = num(&flag, value()?)?,
            "--stop" => args.options.stop.push(value()?),
            "--temperature" => s.temperature = num(&flag, value()?)?,
            "--seed" => s.seed = num(&flag, value()?)?,
            "--top-k" => top_k = Some(num(&flag, value()?)?),
            "--top-p" => s.top_p = num(&flag, value()?)?,
            "--min-p" => s.min_p = num(&flag, value()?)?,
            "--repeat-penalty" => s.repeat_penalty = num(&flag, value()?)?,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.model.is_empty() {
        return Err(format!("--model is required\n{USAGE}"));
    }
    let modes = [args.prompt.is_some(), args.chat.is_some(), args.score].iter().filter(|&&m| m).count();
    if modes != 1 {
        return Err(format!("give exactly one of --prompt, --chat, --score\n{USAGE}"));
    }
    if args.score {
        args.options.sampler.top_k = top_k.unwrap_or(3);
    } else if let Some(k) = top_k {
        args.options.sampler.top_k = k;
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> webslm::Result<()> {
    let t = web_time::Instant::now();
    let mut session =
        Session::load_path(&args.model, LoadOptions { context_length: args.context, ..Default::default() })?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let info = session.info().clone();
    eprintln!(
        "loaded {} ({}, {} parameters, {}) in {load_ms:.0} ms; context {}",
        info.name.as_deref().unwrap_or(&args.model),
        info.architecture,
        info.parameters,
        info.quantization,
        info.context_length
    );

    if args.score {
        let tokens: Vec<u32> = args.prompt_ids.iter().chain(&args.continuation_ids).copied().collect();
        let score = session.score(&tokens, args.prompt_ids.len(), args.options.sampler.top_k)?;
        println!("{}", score_json(&score));
        let s = session.stats();
        eprintln!(
            "scored {} tokens in {:.0} ms ({:.1} tok/s)",
            tokens.len(),
            s.prefill_ms,
            s.prefill_tokens_per_second()
        );
        return Ok(());
    }

    let json = args.json;
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut generation = match (&args.prompt, &args.chat) {
        (Some(p), _) => session.generate_text(p, args.options.clone())?,
        (_, Some(c)) => {
            let mut messages = Vec::new();
            if let Some(s) = &args.system {
                messages.push(Message::new("system", s.clone()));
            }
            messages.push(Message::new("user", c.clone()));
            session.chat(&messages, args.options.clone())?
        }
        _ => unreachable!("one mode is checked in parse_args"),
    };
    let mut stdout = std::io::stdout().lock();
    for piece in generation.by_ref() {
        tokens.push(piece.token);
        text.push_str(&piece.text);
        if !json {
            let _ = stdout.write_all(piece.text.as_bytes());
            let _ = stdout.flush();
        }
    }
    drop(generation);
    let s = session.stats().clone();
    if json {
        let out = serde_json::json!({
            "text": text,
            "tokens": tokens,
            "finish_reason": format!("{:?}", s.finish_reason),
            "prompt_tokens": s.prompt_tokens,
            "prefill_tokens_per_second": s.prefill_tokens_per_second(),
            "decode_tokens_per_second": s.decode_tokens_per_second(),
            "time_to_first_token_ms": s.time_to_first_token_ms,
            "load_ms": load_ms,
        });
        println!("{out}");
    } else {
        println!();
    }
    eprintln!(
        "prompt {} tokens: prefill {:.1} tok/s ({:.0} ms); generated {} tokens: decode {:.1} tok/s; time to first token {:.0} ms; finish {:?}",
        s.prompt_tokens,
        s.prefill_tokens_per_second(),
        s.prefill_ms,
        s.generated_tokens,
        s.decode_tokens_per_second(),
        s.time_to_first_token_ms,
        s.finish_reason
    );
    Ok(())
}

fn score_json(score: &Score) -> serde_json::Value {
    let positions: Vec<_> = score
        .tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "logit": t.logit,
                "logprob": t.logprob,
                "top": t.top.iter().map(|c| serde_json::json!([c.id, c.logit])).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "positions": positions, "perplexity": score.perplexity })
}
