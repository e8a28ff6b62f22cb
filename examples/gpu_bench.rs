//! Prefill and decode speed of each GPU kernel family on this machine's
//! adapter, beside the CPU backend, for the models given
//! (`scripts/gpu-bench.sh` runs it on SmolLM2 and Gemma 3). A markdown
//! table on stdout, naming the adapter.
//!
//! ```text
//! cargo run --release --features gpu --example gpu_bench -- MODEL.gguf... [--prompt N] [--decode N] [--runs N] [--no-cpu]
//! ```
//! Each family loads the model on a device of its own, runs a short warm-up
//! (which makes the pipelines), then `--runs` prompts of `--prompt` tokens
//! (different ones, so that nothing is reused from the cache) each followed
//! by up to `--decode` greedy tokens; the best run's figures are reported.

use std::process::ExitCode;
use std::time::Instant;
use webslm::gpu::{Family, Gpu};
use webslm::model::Backend;
use webslm::session::Loader;
use webslm::{GenerateOptions, LoadOptions, SamplerConfig, Session};

struct Args {
    models: Vec<String>,
    prompt: usize,
    decode: usize,
    runs: usize,
    cpu: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { models: Vec::new(), prompt: 128, decode: 64, runs: 2, cpu: true };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || -> Result<usize, String> {
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--prompt" => args.prompt = num()?.max(1),
            "--decode" => args.decode = num()?.max(2),
            "--runs" => args.runs = num()?.max(1),
            "--no-cpu" => args.cpu = false,
            f if f.starts_with("--") => return Err(format!("unknown flag {f}")),
            model => args.models.push(model.to_string()),
        }
    }
    if args.models.is_empty() {
        return Err("usage: gpu_bench MODEL.gguf... [--prompt N] [--decode N] [--runs N] [--no-cpu]".into());
    }
    Ok(args)
}

/// The best prefill and decode tokens a second over `args.runs` prompts.
fn measure<B: Backend>(session: &mut Session<B>, args: &Args) -> Result<(f64, f64), webslm::Error> {
    let vocab = session.hparams().n_vocab as u32;
    let options = |max_tokens| GenerateOptions {
        max_tokens,
        sampler: SamplerConfig { temperature: 0.0, ..SamplerConfig::default() },
        ..GenerateOptions::default()
    };
    let prompt = |run: u32, n: usize| -> Vec<u32> {
        (0..n as u32).map(|i| 100 + (run * 7919 + i * 31) % (vocab - 100)).collect()
    };
    session.generate(&prompt(0, 8), options(4))?.for_each(drop);
    let (mut prefill, mut decode) = (0f64, 0f64);
    for run in 1..=args.runs as u32 {
        session.generate(&prompt(run, args.prompt), options(args.decode))?.for_each(drop);
        let stats = session.stats();
        prefill = prefill.max(stats.prefill_tokens_per_second());
        decode = decode.max(stats.decode_tokens_per_second());
    }
    Ok((prefill, decode))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let adapter = Gpu::new()?.adapter().to_string();
    println!(
        "GPU adapter: {adapter}; {}-token prompts, up to {} tokens decoded, best of {}",
        args.prompt, args.decode, args.runs
    );
    println!();
    println!("| model | backend | kernels | prefill tok/s | decode tok/s | load s |");
    println!("|---|---|---|---:|---:|---:|");
    for path in &args.models {
        let bytes = std::fs::read(path)?;
        let name = std::path::Path::new(path).file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        let load = LoadOptions { context_length: Some(args.prompt + args.decode + 32), ..Default::default() };
        for family in Family::ALL {
            let gpu = pollster::block_on(Gpu::request_family(Some(family)))?;
            if gpu.family() != family {
                println!("| {name} | GPU | {} | not on this adapter | | |", family.name());
                continue;
            }
            let start = Instant::now();
            let mut loader = Loader::new(gpu, bytes.len() as u64, load.clone());
            for chunk in bytes.chunks(1 << 20) {
                loader.push(chunk)?;
            }
            let mut session = loader.finish()?;
            let loaded = start.elapsed().as_secs_f64();
            let (prefill, decode) = measure(&mut session, args)?;
            println!("| {name} | GPU | {} | {prefill:.1} | {decode:.1} | {loaded:.2} |", family.name());
        }
        if args.cpu {
            let start = Instant::now();
            let mut session = Session::load_bytes(&bytes, load.clone())?;
            let loaded = start.elapsed().as_secs_f64();
            let (prefill, decode) = measure(&mut session, args)?;
            println!("| {name} | CPU | | {prefill:.1} | {decode:.1} | {loaded:.2} |");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
