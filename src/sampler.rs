//! Token sampling and stop strings, kept apart from the model (as in llama2.c).
//!
//! [`Sampler`] turns one position's logits into a token id. The chain follows
//! llama.cpp's default order: logit bias → penalties → (greedy when
//! `temperature <= 0`) → top-k → top-p → min-p → temperature → softmax → draw.
//! Draws are reproducible across platforms: the PRNG is our own and the softmax
//! uses [`exp`] built from basic IEEE arithmetic, so native and wasm builds pick
//! the same tokens for the same logits and seed.
//!
//! [`StopStrings`] watches the decoded text stream for stop strings.

use std::cmp::Ordering;

/// Sampling settings. The defaults are greedy decoding with every filter off.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// `<= 0` means greedy (argmax, ties go to the lowest id).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1.0 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0.0 = off.
    pub min_p: f32,
    /// llama.cpp semantics: a positive logit is divided by it, a negative one
    /// multiplied, once per distinct token in the window; 1.0 = off.
    pub repeat_penalty: f32,
    /// Subtracted from a logit once per occurrence in the window; 0 = off.
    pub frequency_penalty: f32,
    /// Subtracted once from the logit of every token present in the window; 0 = off.
    pub presence_penalty: f32,
    /// How many of the most recent tokens the penalties look at; 0 turns them off.
    pub penalty_last_n: usize,
    /// Added to the logits before anything else; `f32::NEG_INFINITY` bans a token.
    pub logit_bias: Vec<(u32, f32)>,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            logit_bias: Vec::new(),
            seed: 0,
        }
    }
}

/// Picks tokens from logits according to a [`SamplerConfig`].
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    rng: Rng,
    /// Reused between calls so a 262k vocabulary is not reallocated per token.
    candidates: Vec<Candidate>,
    /// Sorted copy of the penalty window, to count occurrences without a vocab-sized table.
    window: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u32,
    logit: f32,
    /// Unnormalised probability, filled by the step that needs it.
    weight: f64,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Self {
        let rng = Rng::new(config.seed);
        Sampler { config, rng, candidates: Vec::new(), window: Vec::new() }
    }

    /// Whether [`Sampler::sample`] is [`greedy`] of the raw logits (no
    /// temperature, bias or penalty), which a backend can compute where the
    /// logits are.
    pub fn is_greedy(&self) -> bool {
        let c = &self.config;
        let no_penalty = c.penalty_last_n == 0
            || (c.repeat_penalty == 1.0 && c.frequency_penalty == 0.0 && c.presence_penalty == 0.0);
        !(c.temperature > 0.0) && c.logit_bias.is_empty() && no_penalty
    }

    /// Picks the next token from raw logits; `recent` is the token history
    /// (prompt + generated) the penalties look at. Modifies `logits` in place
    /// (bias and penalties). NaN logits count as `-inf`.
    ///
    /// If nothing can be picked (every token banned or `-inf`), returns the
    /// argmax of the logits as they came in, or 0 if those are all `-inf`/NaN,
    /// so generation can still end normally.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        let fallback = argmax(logits).unwrap_or(0);
        self.apply_bias(logits);
        self.apply_penalties(logits, recent);

        let config = &self.config;
        if config.temperature.is_nan() || config.temperature <= 0.0 {
            return argmax(logits).unwrap_or(fallback);
        }

        // `-inf` (banned) tokens are left out; `+inf` is clamped so the softmax stays finite.
        self.candidates.clear();
        self.candidates.extend(
            logits.iter().enumerate().filter(|(_, &l)| l > f32::NEG_INFINITY).map(|(id, &l)| Candidate {
                id: id as u32,
                logit: l.min(f32::MAX),
                weight: 0.0,
            }),
        );
        if self.candidates.is_empty() {
            return fallback;
        }

        // After top-k or top-p the survivors are in canonical order (best first);
        // otherwise they stay in id order. Both orders are platform independent.
        let mut sorted = false;
        if config.top_k > 0 && config.top_k < self.candidates.len() {
            sort_best(&mut self.candidates, config.top_k);
            self.candidates.truncate(config.top_k);
            sorted = true;
        }
        if config.top_p < 1.0 {
            top_p(&mut self.candidates, config.top_p);
            sorted = true;
        }
        if config.min_p > 0.0 {
            let max = max_logit(&self.candidates, sorted);
            let min_p = f64::from(config.min_p.min(1.0));
            self.candidates.retain(|c| exp(f64::from(c.logit) - max) >= min_p);
        }
        self.draw(sorted)
    }

    fn apply_bias(&self, logits: &mut [f32]) {
        for &(id, bias) in &self.config.logit_bias {
            if let Some(logit) = logits.get_mut(id as usize) {
                let biased = *logit + bias;
                // `inf + -inf` (and NaN inputs) end up banned rather than NaN.
                *logit = if biased.is_nan() { f32::NEG_INFINITY } else { biased };
            }
        }
    }

    fn apply_penalties(&mut self, logits: &mut [f32], recent: &[u32]) {
        let c = &self.config;
        let off = c.repeat_penalty == 1.0 && c.frequency_penalty == 0.0 && c.presence_penalty == 0.0;
        if off || c.penalty_last_n == 0 {
            return;
        }
        self.window.clear();
        self.window.extend_from_slice(&recent[recent.len().saturating_sub(c.penalty_last_n)..]);
        self.window.sort_unstable();
        for run in self.window.chunk_by(|a, b| a == b) {
            let Some(logit) = logits.get_mut(run[0] as usize) else {
                continue;
            };
            if !logit.is_finite() {
                continue; // banned stays banned; no inf/inf NaNs
            }
            if *logit <= 0.0 {
                *logit *= c.repeat_penalty;
            } else {
                *logit /= c.repeat_penalty;
            }
            *logit -= run.len() as f32 * c.frequency_penalty + c.presence_penalty;
        }
    }

    /// Softmax at the configured temperature, then one uniform draw.
    fn draw(&mut self, sorted: bool) -> u32 {
        let max = max_logit(&self.candidates, sorted);
        let temperature = f64::from(self.config.temperature);
        let mut total = 0.0;
        for c in &mut self.candidates {
            c.weight = exp((f64::from(c.logit) - max) / temperature);
            total += c.weight;
        }
        let mut u = self.rng.next_f64() * total;
        for c in &self.candidates {
            if u < c.weight {
                return c.id;
            }
            u -= c.weight;
        }
        // Only reachable through rounding in the running subtraction.
        self.candidates.last().map_or(0, |c| c.id)
    }
}

/// Index of the largest logit, ties to the lowest id, NaN ignored; `None` if all are `-inf`/NaN.
/// The token a greedy sampler picks: the highest logit, ties to the lowest
/// id, NaN and `-inf` never; 0 when every logit is one of those.
pub fn greedy(logits: &[f32]) -> u32 {
    argmax(logits).unwrap_or(0)
}

fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best = None;
    let mut best_logit = f32::NEG_INFINITY;
    for (id, &l) in logits.iter().enumerate() {
        if l > best_logit {
            best_logit = l;
            best = Some(id as u32);
        }
    }
    best
}

/// Canonical order: higher logit first, then lower id. A total order, so the
/// result of partial selection and sorting does not depend on the algorithm.
fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// Moves the `k` best candidates to the front in canonical order without sorting the rest.
fn sort_best(candidates: &mut [Candidate], k: usize) {
    let k = k.min(candidates.len());
    if k == 0 {
        return;
    }
    if k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, by_logit_desc);
    }
    candidates[..k].sort_unstable_by(by_logit_desc);
}

fn max_logit(candidates: &[Candidate], sorted: bool) -> f64 {
    let max = if sorted { candidates[0].logit } else { candidates.iter().fold(f32::MIN, |m, c| m.max(c.logit)) };
    f64::from(max)
}

/// Keeps the minimal nucleus: the best tokens until their probability
/// (at temperature 1) reaches `p`. Sorts in growing chunks so that a large
/// vocabulary is not fully sorted when the nucleus is small.
fn top_p(candidates: &mut Vec<Candidate>, p: f32) {
    let max = max_logit(candidates, false);
    let mut total = 0.0;
    for c in candidates.iter_mut() {
        c.weight = exp(f64::from(c.logit) - max);
        total += c.weight;
    }
    let target = f64::from(p) * total;
    let mut cumulative = 0.0;
    let (mut done, mut chunk) = (0, 64);
    while done < candidates.len() {
        let end = chunk.min(candidates.len());
        // Re-selecting keeps the already sorted prefix in place: the order is total.
        sort_best(candidates, end);
        for i in done..end {
            cumulative += candidates[i].weight;
            if cumulative >= target {
                candidates.truncate(i + 1);
                return;
            }
        }
        done = end;
        chunk *= 8;
    }
}

/// `e^x` from `+ - * /` only, so it gives the same bits on every platform
/// (std's `exp` comes from the host libm natively and from a Rust port on
/// wasm). Relative error below 1e-11 (plenty for probabilities); underflows to 0 below -708.
fn exp(x: f64) -> f64 {
    /// 1/n! for the Taylor series, evaluated at compile time.
    const INV_FACTORIALS: [f64; 10] = {
        let mut t = [1.0; 10];
        let mut n = 1;
        while n < t.len() {
            t[n] = t[n - 1] / n as f64;
            n += 1;
        }
        t
    };
    // fdlibm's split of ln2: `k * LN2_HI` is exact for the k we meet.
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Adding and subtracting 1.5 * 2^52 rounds to the nearest integer without libm.
    const ROUND: f64 = 6_755_399_441_055_744.0;

    if x < -708.0 {
        return 0.0; // also -inf
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    // x = k ln2 + r with |r| <= ln2 / 2; e^x = 2^k e^r.
    let k = (x * std::f64::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let series = INV_FACTORIALS.iter().rev().fold(0.0, |acc, &c| acc * r + c);
    series * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// xoshiro256** seeded through splitmix64: small, fast, and identical everywhere.
#[derive(Clone, Debug)]
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut splitmix = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([splitmix(), splitmix(), splitmix(), splitmix()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` from the top 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Watches the decoded text stream for stop strings. Text that might be the
/// start of a stop string is held back until it is known not to be; text after
/// a stop string is never emitted. Works on `&str` pieces, so it can never cut
/// inside a UTF-8 character.
#[derive(Clone, Debug)]
pub struct StopStrings {
    stops: Vec<String>,
    held: String,
    hit: bool,
}

impl StopStrings {
    /// Empty strings are ignored.
    pub fn new(mut stops: Vec<String>) -> Self {
        stops.retain(|s| !s.is_empty());
        StopStrings { stops, held: String::new(), hit: false }
    }

    /// Feeds a piece; returns (text safe to emit now, whether a stop string was
    /// hit). After a hit, further pushes return `("", true)`.
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.hit {
            return (String::new(), true);
        }
        self.held.push_str(piece);
        // Everything before `held` was released only because no stop string could
        // start there, so the earliest match in `held` is the first in the stream.
        if let Some(pos) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.held.truncate(pos);
            self.hit = true;
            return (std::mem::take(&mut self.held), true);
        }
        // Hold back the longest tail that is still the beginning of a stop string.
        let held = &self.held;
        let keep_from = (0..held.len())
            .filter(|&i| held.is_char_boundary(i))
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&held[i..])))
            .unwrap_or(held.len());
        let emit = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        (emit, false)
    }

    /// At the end of generation: the held-back text (empty after a hit).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(config: SamplerConfig, logits: &[f32], recent: &[u32]) -> u32 {
        Sampler::new(config).sample(&mut logits.to_vec(), recent)
    }

    fn tempered(temperature: f32, seed: u64) -> SamplerConfig {
        SamplerConfig { temperature, seed, ..Default::default() }
    }

    /// Draw frequencies over `n` samples from fixed logits.
    fn histogram(config: SamplerConfig, logits: &[f32], n: usize) -> Vec<usize> {
        let mut s = Sampler::new(config);
        let mut counts = vec![0; logits.len()];
        for _ in 0..n {
            counts[s.sample(&mut logits.to_vec(), &[]) as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_ties_go_to_lowest_id() {
        assert_eq!(sample(SamplerConfig::default(), &[1.0, 3.0, 2.0, 3.0], &[]), 1);
        assert_eq!(sample(tempered(-1.0, 0), &[5.0, 5.0], &[]), 0);
    }

    #[test]
    fn top_k_one_equals_greedy() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1009) as f32 * 0.01).collect();
        let greedy = sample(SamplerConfig::default(), &logits, &[]);
        for seed in 0..20 {
            let config = SamplerConfig { temperature: 1.5, top_k: 1, seed, ..Default::default() };
            assert_eq!(sample(config, &logits, &[]), greedy);
        }
        // With ties the lowest id survives top-k as in greedy.
        let config = SamplerConfig { temperature: 1.0, top_k: 1, ..Default::default() };
        assert_eq!(sample(config, &[0.0, 2.0, 2.0], &[]), 1);
    }

    #[test]
    fn top_k_keeps_exactly_k_best() {
        let logits = [0.0, 5.0, 1.0, 4.0, 3.0, 4.0];
        let config = SamplerConfig { temperature: 100.0, top_k: 3, ..Default::default() };
        let counts = histogram(config, &logits, 3000);
        // Best three: id 1 (5.0), then ids 3 and 5 (4.0 each).
        assert_eq!(counts.iter().filter(|&&c| c > 0).count(), 3);
        assert!(counts[1] > 0 && counts[3] > 0 && counts[5] > 0);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 5) as f32 * 0.3).collect();
        let run = |seed| {
            let mut s = Sampler::new(tempered(1.0, seed));
            (0..64).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn rng_matches_reference_sequence() {
        // splitmix64(0) first output is the published 0xe220a8397b1dcdaf; the
        // xoshiro256** values were computed with an independent implementation.
        let rng = Rng::new(0);
        assert_eq!(rng.0[0], 0xe220_a839_7b1d_cdaf);
        let mut rng = Rng::new(0);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(got, XOSHIRO_SEED0);
    }

    const XOSHIRO_SEED0: [u64; 3] = [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0];

    #[test]
    fn exp_is_accurate() {
        for i in 0..=20_000 {
            let x = -700.0 + i as f64 * 0.0351;
            let rel = (exp(x) - x.exp()).abs() / x.exp();
            assert!(rel < 1e-11, "exp({x}) off by {rel}");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn temperature_one_matches_softmax() {
        let logits = [1.0f32, 2.0, 0.5, -1.0];
        let n = 20_000;
        let counts = histogram(tempered(1.0, 7), &logits, n);
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        let chi2: f64 = logits
            .iter()
            .zip(&counts)
            .map(|(&l, &c)| {
                let expected = n as f64 * f64::from(l).exp() / z;
                (c as f64 - expected).powi(2) / expected
            })
            .sum();
        // 3 degrees of freedom: 16.27 is the 0.1% critical value.
        assert!(chi2 < 16.27, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn low_temperature_sharpens() {
        let logits = [1.0f32, 2.0];
        let cold = histogram(tempered(0.25, 1), &logits, 4000);
        // p(1) = 1 / (1 + e^-4) ≈ 0.982
        assert!(cold[1] as f64 / 4000.0 > 0.97, "{cold:?}");
    }

    #[test]
    fn top_p_keeps_minimal_nucleus() {
        // Probabilities 0.5, 0.25, 0.125, 0.125 (ids 2, 0, 1, 3).
        let l = |p: f64| p.ln() as f32;
        let logits = [l(0.25), l(0.125), l(0.5), l(0.125)];
        let survivors = |top_p| {
            let config = SamplerConfig { temperature: 1.0, top_p, ..Default::default() };
            let counts = histogram(config, &logits, 2000);
            (0..4).filter(|&i| counts[i] > 0).collect::<Vec<_>>()
        };
        assert_eq!(survivors(0.5), vec![2]); // 0.5 reaches 0.5 on its own
        assert_eq!(survivors(0.6), vec![0, 2]);
        assert_eq!(survivors(0.8), vec![0, 1, 2]); // tie at 0.125: lower id first
        assert_eq!(survivors(0.0), vec![2]);
    }

    #[test]
    fn top_p_over_a_large_vocabulary() {
        // The nucleus is larger than the first sorted chunk.
        let logits: Vec<f32> = (0..10_000).map(|i| if i % 50 == 0 { 10.0 } else { 0.0 }).collect();
        let config = SamplerConfig { temperature: 1.0, top_p: 0.9, ..Default::default() };
        let counts = histogram(config, &logits, 5000);
        assert!(counts.iter().enumerate().all(|(i, &c)| c == 0 || i % 50 == 0));
        assert!(counts.iter().filter(|&&c| c > 0).count() > 150);
    }

    #[test]
    fn min_p_is_relative_to_top_token() {
        // Probabilities proportional to 1, 0.5, 0.2, 0.05.
        let logits = [0.0f32, 0.5f32.ln(), 0.2f32.ln(), 0.05f32.ln()];
        let config = SamplerConfig { temperature: 1.0, min_p: 0.15, ..Default::default() };
        let counts = histogram(config, &logits, 3000);
        assert!(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
        assert_eq!(counts[3], 0);
    }

    #[test]
    fn repeat_penalty_divides_positive_multiplies_negative() {
        let config = SamplerConfig { repeat_penalty: 2.0, ..Default::default() };
        let mut logits = vec![4.0, -4.0, 4.0, 0.0];
        // Token 0 appears twice but is penalised once.
        Sampler::new(config).sample(&mut logits, &[0, 1, 0, 3]);
        assert_eq!(logits, vec![2.0, -8.0, 4.0, 0.0]);
    }

    #[test]
    fn penalties_only_look_at_the_window() {
        let config = SamplerConfig { repeat_penalty: 2.0, penalty_last_n: 2, ..Default::default() };
        let mut logits = vec![4.0, 4.0, 4.0];
        Sampler::new(config).sample(&mut logits, &[0, 1, 2]);
        assert_eq!(logits, vec![4.0, 2.0, 2.0]);
    }

    #[test]
    fn frequency_and_presence_penalties() {
        let config = SamplerConfig { frequency_penalty: 0.5, presence_penalty: 1.0, ..Default::default() };
        let mut logits = vec![3.0, 3.0, 3.0];
        // Token 1 three times, token 2 once, out-of-range ids ignored.
        Sampler::new(config).sample(&mut logits, &[1, 2, 1, 1, 99]);
        assert_eq!(logits, vec![3.0, 3.0 - 1.5 - 1.0, 3.0 - 0.5 - 1.0]);
    }

    #[test]
    fn penalties_change_the_greedy_choice() {
        let config = SamplerConfig { repeat_penalty: 1.5, ..Default::default() };
        assert_eq!(sample(config, &[3.0, 2.5], &[0]), 1);
    }

    #[test]
    fn logit_bias_bans_and_boosts() {
        let ban = SamplerConfig { logit_bias: vec![(1, f32::NEG_INFINITY)], ..Default::default() };
        assert_eq!(sample(ban.clone(), &[0.0, 9.0, 1.0], &[]), 2);
        let sampled = SamplerConfig { temperature: 1.0, seed: 3, ..ban };
        let counts = histogram(sampled, &[0.0, 9.0, 1.0], 500);
        assert_eq!(counts[1], 0);
        let boost = SamplerConfig { logit_bias: vec![(0, 10.0), (77, 1.0)], ..Default::default() };
        assert_eq!(sample(boost, &[0.0, 9.0, 1.0], &[]), 0);
    }

    #[test]
    fn nan_logits_count_as_minus_infinity() {
        let logits = [f32::NAN, 1.0, f32::NAN, 2.0];
        assert_eq!(sample(SamplerConfig::default(), &logits, &[]), 3);
        let config = SamplerConfig {
            temperature: 0.8,
            top_k: 3,
            top_p: 0.95,
            min_p: 0.01,
            repeat_penalty: 1.3,
            ..Default::default()
        };
        let counts = histogram(config, &logits, 500);
        assert_eq!(counts[0] + counts[2], 0);
        assert_eq!(sample(tempered(1.0, 0), &[f32::NAN; 8], &[]), 0);
    }

    #[test]
    fn everything_banned_falls_back_to_original_argmax() {
        let logits = [0.5, 2.0, 1.0];
        let bias = vec![(0, f32::NEG_INFINITY), (1, f32::NEG_INFINITY), (2, f32::NEG_INFINITY)];
        for temperature in [0.0, 1.0] {
            let config = SamplerConfig { temperature, logit_bias: bias.clone(), ..Default::default() };
            assert_eq!(sample(config, &logits, &[]), 1);
        }
        assert_eq!(sample(SamplerConfig::default(), &[], &[]), 0);
    }

    #[test]
    fn infinite_logits_do_not_poison_the_softmax() {
        let logits = [1.0, f32::INFINITY, 3.0];
        for seed in 0..10 {
            assert_eq!(sample(tempered(1.0, seed), &logits, &[]), 1);
        }
    }

    /// Feeds pieces, collects what is emitted and whether a stop was hit.
    fn run_stops(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut s = StopStrings::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for piece in pieces {
            let (text, hit) = s.push(piece);
            out += &text;
            if hit {
                assert_eq!(s.push("more"), (String::new(), true));
                assert_eq!(s.flush(), "");
                return (out, true);
            }
        }
        out += &s.flush();
        (out, false)
    }

    #[test]
    fn stop_string_across_pieces() {
        assert_eq!(run_stops(&["<end>"], &["Hello <e", "n", "d> world"]), ("Hello ".into(), true));
        assert_eq!(run_stops(&["\n\n"], &["a\n", "\nb"]), ("a".into(), true));
    }

    #[test]
    fn stop_string_with_multibyte_characters() {
        assert_eq!(run_stops(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
        assert_eq!(run_stops(&["é!"], &["caf", "é", "s"]), ("cafés".into(), false));
        assert_eq!(run_stops(&["日本"], &["これは日", "本語"]), ("これは".into(), true));
    }

    #[test]
    fn partial_prefix_is_held_then_released() {
        let mut s = StopStrings::new(vec!["STOP".into()]);
        assert_eq!(s.push("go ST"), ("go ".into(), false));
        assert_eq!(s.push("O"), ("".into(), false));
        assert_eq!(s.push("P?"), ("".into(), true));

        let mut s = StopStrings::new(vec!["STOP".into()]);
        assert_eq!(s.push("go ST"), ("go ".into(), false));
        assert_eq!(s.push("ORM"), ("STORM".into(), false));
        assert_eq!(s.push("ST"), ("".into(), false));
        assert_eq!(s.flush(), "ST");
    }

    #[test]
    fn overlapping_candidates() {
        assert_eq!(run_stops(&["ab"], &["a", "a", "b"]), ("a".into(), true));
        assert_eq!(run_stops(&["ab"], &["aab"]), ("a".into(), true));
        // The earliest match wins across several stop strings.
        assert_eq!(run_stops(&["cd", "bcx", "b"], &["abc", "d"]), ("a".into(), true));
        assert_eq!(run_stops(&["abcd", "bc"], &["ab", "cd"]), ("".into(), true));
    }

    #[test]
    fn no_stop_strings_pass_everything_through() {
        let mut s = StopStrings::new(vec![String::new()]);
        assert_eq!(s.push("abc"), ("abc".into(), false));
        assert_eq!(s.flush(), "");
    }
}
