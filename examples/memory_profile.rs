//! A developer tool: where a model's memory goes. Loads a GGUF file the way
//! the browser does (pushed 1 MiB at a time), then generates, and prints the
//! heap in use and its peak after each step, counted by a wrapping allocator,
//! and the process's peak resident memory. The wasm build's linear memory
//! follows the same allocations (it never shrinks, so its size is the peak).
//! With `--gpu` (built with `--features gpu`) the model goes to the GPU: the
//! heap then holds no weights, and on lavapipe, whose buffers are host
//! memory, the resident peak shows whether the weights were held twice.
//!
//! ```text
//! cargo run --release [--features gpu] --example memory_profile -- MODEL.gguf [--gpu] [--context N] [--prompt-tokens N] [--max-tokens N]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use webslm::cpu::Cpu;
use webslm::model::Backend;
use webslm::session::Loader;
use webslm::{GenerateOptions, LoadOptions, SamplerConfig};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// The process's peak resident memory (Linux), or nothing.
fn resident_peak() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok());
    kib.map_or_else(String::new, |k: usize| format!("   resident peak {:>12}", mib(k << 10)))
}

fn report(step: &str) {
    println!(
        "{step:<40} in use {:>12}   peak {:>12}{}",
        mib(IN_USE.load(Ordering::Relaxed)),
        mib(PEAK.load(Ordering::Relaxed)),
        resident_peak()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: memory_profile MODEL.gguf [--gpu] [--context N] [--prompt-tokens N] [--max-tokens N]")?;
    let (mut context, mut prompt_tokens, mut max_tokens, mut gpu) = (1024, 128, 128, false);
    while let Some(flag) = args.next() {
        if flag == "--gpu" {
            gpu = true;
            continue;
        }
        let value: usize = args.next().ok_or(format!("{flag} needs a value"))?.parse()?;
        match flag.as_str() {
            "--context" => context = value,
            "--prompt-tokens" => prompt_tokens = value,
            "--max-tokens" => max_tokens = value,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let mut file = std::fs::File::open(&path)?;
    let file_len = file.metadata()?.len();
    println!("{path}: {} ; context {context}", mib(file_len as usize));
    report("start");
    // The header's parts on their own: its parsed metadata, then the tokenizer built from it.
    {
        let mut head = Vec::new();
        let header = loop {
            let mut buf = vec![0u8; (head.len()).max(1 << 20)];
            let n = file.read(&mut buf)?;
            head.extend_from_slice(&buf[..n]);
            if let Some(header) = webslm::gguf::parse_header(&head, file_len)? {
                break header;
            }
            if n == 0 {
                return Err("truncated header".into());
            }
        };
        let header_bytes = header.data_offset as usize;
        drop(head);
        let base = IN_USE.load(Ordering::Relaxed);
        println!("  parsed header ({} in the file)                {}", mib(header_bytes), mib(base));
        let tokenizer = webslm::tokenizer::Tokenizer::from_metadata(&header.metadata)?;
        println!("  tokenizer built from it                        {}", mib(IN_USE.load(Ordering::Relaxed) - base));
        drop(tokenizer);
        drop(header);
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0))?;
    }
    let sizes = Sizes { context, prompt_tokens, max_tokens };
    if gpu {
        #[cfg(feature = "gpu")]
        return profile(webslm::gpu::Gpu::new()?, file, file_len, sizes);
        #[cfg(not(feature = "gpu"))]
        return Err("--gpu needs a build with --features gpu".into());
    }
    profile(Cpu::default(), file, file_len, sizes)
}

struct Sizes {
    context: usize,
    prompt_tokens: usize,
    max_tokens: usize,
}

fn profile<B: Backend>(
    backend: B,
    mut file: std::fs::File,
    file_len: u64,
    sizes: Sizes,
) -> Result<(), Box<dyn std::error::Error>> {
    let Sizes { context, prompt_tokens, max_tokens } = sizes;
    let options = LoadOptions { context_length: Some(context), ..Default::default() };
    let mut loader = Loader::new(backend, file_len, options);
    // The header alone first (64 KiB at a time, so that no tensor has begun),
    // then 1 MiB pieces as the browser pushes them.
    let mut small = [0u8; 64 << 10];
    while !loader.has_header() {
        let n = file.read(&mut small)?;
        if n == 0 {
            break;
        }
        loader.push(&small[..n])?;
    }
    report("header, tokenizer, template");
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        loader.push(&chunk[..n])?;
    }
    drop(chunk);
    report("weights (chunk buffer freed)");
    let mut session = loader.finish()?;
    report("KV cache (session ready)");
    let prompt: Vec<u32> = (0..prompt_tokens as u32).map(|i| 100 + i * 7 % 1000).collect();
    let options = GenerateOptions {
        max_tokens,
        sampler: SamplerConfig { temperature: 0.0, ..SamplerConfig::default() },
        ..GenerateOptions::default()
    };
    let n = session.generate(&prompt, options)?.count();
    report(&format!("{prompt_tokens}-token prompt, {n} pieces"));
    Ok(())
}
