//! Loading a model from a URL. The file arrives through HTTP Range requests
//! and is cut into fixed-size chunks; each whole chunk goes into the engine's
//! streaming loader and, where IndexedDB exists, into the model cache, in one
//! pass. A dropped connection resumes from the last whole chunk (a few times
//! within one load, and from the cache in a later one); a cached model loads
//! from IndexedDB without touching the network.

use super::cache::{request_persistence, Cache, Record};
use super::{coded_error, from_js, Engine, GpuDevice, ModelLoader};
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, ReadableStreamDefaultReader, Request, RequestInit, Response};

/// 16 MiB: few enough requests and records, small enough to lose little on a drop.
const DEFAULT_CHUNK_SIZE: u32 = 16 << 20;
/// Resumes within one load after a dropped connection, with a growing pause.
const RETRIES: u32 = 3;
const RETRY_PAUSE_MS: f64 = 250.0;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` of browsers, workers, Node and Deno alike.
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_request(request: &Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct UrlOptions {
    context_length: Option<u32>,
    /// Keep the download in IndexedDB (where there is one); default true.
    cache: Option<bool>,
    sha256: Option<String>,
    chunk_size: Option<u32>,
}

/// `loadUrl(url, options, onProgress, signal, gpu)`: the engine for the GGUF file
/// at `url`, from the cache when it holds the whole file.
#[wasm_bindgen(js_name = loadUrl)]
pub async fn load_url(
    url: String,
    options: JsValue,
    on_progress: Option<Function>,
    signal: Option<AbortSignal>,
    gpu: Option<GpuDevice>,
) -> Result<Engine, JsValue> {
    let options: UrlOptions = from_js(options, "load options")?;
    let chunk_size = options.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE);
    if chunk_size == 0 {
        return Err(coded_error("INVALID_ARGUMENT", "chunkSize must be positive"));
    }
    let cache = if options.cache.unwrap_or(true) { Cache::open().await } else { None };
    let mut job = Job {
        url,
        context_length: options.context_length,
        sha256: options.sha256.map(|s| s.to_ascii_lowercase()),
        chunk_size,
        cache,
        progress: Progress { callback: on_progress, total: 0, reported: None },
        signal,
        gpu,
    };
    job.run().await
}

/// What identifies one version of a file on the server.
#[derive(PartialEq, Debug)]
struct Validators {
    size: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Validators {
    fn of(record: &Record) -> Validators {
        Validators { size: record.size, etag: record.etag.clone(), last_modified: record.last_modified.clone() }
    }
}

/// An open response: its body starts at byte `start` of the file.
struct Reply {
    reader: ReadableStreamDefaultReader,
    start: u64,
    file: Validators,
}

/// Reports progress at most once per MiB, and always at the end.
struct Progress {
    callback: Option<Function>,
    total: u64,
    reported: Option<u64>,
}

impl Progress {
    fn report(&mut self, phase: &str, loaded: u64) {
        let Some(callback) = &self.callback else { return };
        if self.reported.is_some_and(|r| loaded < self.total && loaded < r + (1 << 20)) {
            return;
        }
        self.reported = Some(loaded);
        let event = Object::new();
        for (key, value) in
            [("phase", JsValue::from(phase)), ("loaded", (loaded as f64).into()), ("total", (self.total as f64).into())]
        {
            let _ = Reflect::set(&event, &key.into(), &value);
        }
        // A throwing callback is the page's bug; it does not stop the load.
        let _ = callback.call1(&JsValue::NULL, &event);
    }
}

struct Job {
    url: String,
    context_length: Option<u32>,
    sha256: Option<String>,
    chunk_size: u32,
    cache: Option<Cache>,
    progress: Progress,
    signal: Option<AbortSignal>,
    /// The GPU to load onto (taken by the job's one loader), or the CPU.
    gpu: Option<GpuDevice>,
}

fn code_of(e: &JsValue) -> Option<String> {
    Reflect::get(e, &"code".into()).ok()?.as_string()
}

impl Job {
    async fn run(&mut self) -> Result<Engine, JsValue> {
        let record = match &self.cache {
            Some(cache) => cache.record(&self.url).await?,
            None => None,
        };
        match record {
            Some(r) if r.complete => self.load_cached(r).await,
            Some(r) if r.chunk_size == self.chunk_size => self.download(Some(r)).await,
            Some(_) => {
                self.forget().await;
                self.download(None).await
            }
            None => self.download(None).await,
        }
    }

    fn loader(&mut self, size: u64, verify: bool) -> Result<ModelLoader, JsValue> {
        let sha256 = if verify { self.sha256.clone() } else { None };
        ModelLoader::new(size as f64, self.context_length, sha256, self.gpu.take())
    }

    fn check_abort(&self) -> Result<(), JsValue> {
        match &self.signal {
            Some(s) if s.aborted() => Err(coded_error("ABORTED", "the load was aborted")),
            _ => Ok(()),
        }
    }

    /// Removes this URL from the cache (best effort: a failure here must not
    /// hide the error that led to it).
    async fn forget(&self) {
        if let Some(cache) = &self.cache {
            let _ = cache.delete(&self.url).await;
        }
    }

    /// Passes `result` on, first forgetting the cached file when its bytes are
    /// bad (not a GGUF file, or not the expected SHA-256).
    async fn unless_bad<T>(&self, result: Result<T, JsValue>) -> Result<T, JsValue> {
        if let Err(e) = &result {
            if matches!(code_of(e).as_deref(), Some("INVALID_GGUF" | "INTEGRITY")) {
                self.forget().await;
            }
        }
        result
    }

    /// Reads chunks `0..count` from the cache into `loader`; returns the bytes read.
    async fn replay(&mut self, cache: &Cache, count: u32, loader: &mut ModelLoader) -> Result<u64, JsValue> {
        let mut buf = Vec::new();
        let mut loaded = 0;
        for index in 0..count {
            self.check_abort()?;
            if !cache.read_chunk(&self.url, index, &mut buf).await? {
                self.forget().await;
                return Err(coded_error(
                    "IO",
                    &format!("chunk {index} of the cached {} is missing; it was removed, load it again", self.url),
                ));
            }
            self.unless_bad(loader.push(&buf)).await?;
            loaded += buf.len() as u64;
            self.progress.report("load", loaded);
        }
        Ok(loaded)
    }

    async fn load_cached(&mut self, mut record: Record) -> Result<Engine, JsValue> {
        let cache = self.cache.clone().expect("a cached record comes from a cache");
        async {
            if cache.count_chunks(&self.url).await? != record.chunk_count() {
                self.forget().await;
                return Err(coded_error(
                    "IO",
                    &format!("the cached {} is damaged; it was removed, load it again", self.url),
                ));
            }
            // Verified when it was stored against the same digest: no need to hash again.
            let verify = self.sha256.is_some() && record.sha256 != self.sha256;
            let mut loader = self.loader(record.size, verify)?;
            self.progress.total = record.size;
            self.replay(&cache, record.chunk_count(), &mut loader).await?;
            self.unless_bad(loader.verify()).await?;
            if verify {
                record.sha256.clone_from(&self.sha256);
                cache.put_record(&record).await?;
            }
            loader.finish()
        }
        .await
    }

    /// Opens the file from byte `from`. `None` when the server cannot serve
    /// that range (the file shrank).
    async fn request(&self, from: u64) -> Result<Option<Reply>, JsValue> {
        let url = &self.url;
        let network = |what: &str| coded_error("NETWORK", &format!("could not fetch {url}: {what}"));
        let headers = Headers::new()?;
        headers.set("Range", &format!("bytes={from}-"))?;
        let init = RequestInit::new();
        init.set_headers(&headers);
        init.set_signal(self.signal.as_ref());
        let request = Request::new_with_str_and_init(url, &init).map_err(|e| network(&message(&e)))?;
        let response: Response = match JsFuture::from(fetch_request(&request)).await {
            Ok(r) => r.unchecked_into(),
            Err(e) => {
                self.check_abort()?;
                return Err(network(&message(&e)));
            }
        };
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let length = header("content-length").and_then(|l| l.trim().parse::<u64>().ok());
        let (start, size) = match response.status() {
            // Content-Range is hidden from cross-origin pages that do not expose it.
            206 => match header("content-range").as_deref().and_then(parse_content_range) {
                Some((start, total)) => (start, total.or(length.map(|l| start + l))),
                None => (from, length.map(|l| from + l)),
            },
            200 => (0, length),
            416 if from > 0 => return Ok(None),
            status => return Err(network(&format!("HTTP {status} {}", response.status_text()))),
        };
        let body = response.body().ok_or_else(|| network("the response has no body"))?;
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let Some(size) = size else {
            // Pages are often sent without a length; a model file rarely is.
            let head = read(&reader).await.ok().flatten().map(|b| b.to_vec()).unwrap_or_default();
            cancel(&reader);
            if start == 0 && !head.starts_with(b"GGUF") {
                return Err(coded_error(
                    "INVALID_GGUF",
                    &format!("{url} is not a GGUF file (it is a page or another file): link to the .gguf file itself"),
                ));
            }
            return Err(network("the server did not send the file's size (Content-Length)"));
        };
        if start > from {
            cancel(&reader);
            return Err(network(&format!("asked for bytes from {from}, the server sent them from {start}")));
        }
        Ok(Some(Reply {
            reader,
            start,
            file: Validators { size, etag: header("etag"), last_modified: header("last-modified") },
        }))
    }

    async fn download(&mut self, resume: Option<Record>) -> Result<Engine, JsValue> {
        let mut record = resume;
        let mut reply = self.request(record.as_ref().map_or(0, Record::stored_bytes)).await?;
        let changed = match (&record, &reply) {
            (Some(r), Some(reply)) => Validators::of(r) != reply.file,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if changed {
            // The file on the server is not the one half downloaded: start over.
            self.forget().await;
            record = None;
            reply = self.request(0).await?;
        }
        let reply = reply.ok_or_else(|| coded_error("NETWORK", &format!("{} cannot be fetched by range", self.url)))?;
        let size = reply.file.size;
        self.progress.total = size;
        let mut loader = self.loader(size, self.sha256.is_some())?;
        let cache = self.cache.clone();
        let result = async {
            if let (None, Some(cache)) = (&record, &cache) {
                let fresh = Record {
                    url: self.url.clone(),
                    size,
                    etag: reply.file.etag.clone(),
                    last_modified: reply.file.last_modified.clone(),
                    chunk_size: self.chunk_size,
                    chunks_stored: 0,
                    complete: false,
                    sha256: None,
                    updated_at: js_sys::Date::now(),
                };
                cache.put_record(&fresh).await?;
                request_persistence().await;
                record = Some(fresh);
            }
            let mut pos = 0;
            if let (Some(r), Some(cache)) = (&record, &cache) {
                pos = self.replay(cache, r.chunks_stored, &mut loader).await?;
            }
            let mut sink = ChunkSink { record: record.as_mut().zip(cache.as_ref()), pos, pending: Vec::new() };
            self.stream(reply, size, &mut sink, &mut loader).await?;
            // Every byte is in; what remains is building the engine.
            self.progress.report("load", size);
            self.unless_bad(loader.verify()).await?;
            if let Some((record, cache)) = sink.record {
                record.complete = true;
                record.sha256.clone_from(&self.sha256);
                cache.put_record(record).await?;
            }
            loader.finish()
        }
        .await;
        match result {
            Err(e) if code_of(&e).as_deref() == Some("QUOTA_EXCEEDED") => {
                // Give the space back; every other cached model stays as it was.
                self.forget().await;
                Err(e)
            }
            result => self.unless_bad(result).await,
        }
    }

    /// Reads the network into `sink` until the file is whole, resuming from
    /// the last whole chunk after a dropped connection.
    async fn stream(
        &mut self,
        mut reply: Reply,
        size: u64,
        sink: &mut ChunkSink<'_>,
        loader: &mut ModelLoader,
    ) -> Result<(), JsValue> {
        let file = Validators { size, etag: reply.file.etag.clone(), last_modified: reply.file.last_modified.clone() };
        let mut skip = sink.pos - reply.start;
        let mut retries = 0;
        while sink.pos < size {
            self.check_abort()?;
            let failure = match read(&reply.reader).await {
                Ok(Some(bytes)) => {
                    let skipped = skip.min(bytes.length() as u64);
                    skip -= skipped;
                    let advanced = sink.pos;
                    let fresh = bytes.subarray(skipped as u32, bytes.length());
                    let result = sink.take(&fresh, self.chunk_size, size, loader).await;
                    self.unless_bad(result).await?;
                    if sink.pos > advanced {
                        retries = 0;
                    }
                    self.progress.report("download", sink.pos + sink.pending.len() as u64);
                    continue;
                }
                Ok(None) => "the connection closed early".to_string(),
                Err(e) => {
                    self.check_abort()?;
                    message(&e)
                }
            };
            cancel(&reply.reader);
            if retries == RETRIES {
                return Err(coded_error(
                    "NETWORK",
                    &format!("downloading {} failed at byte {} of {size}: {failure}", self.url, sink.pos),
                ));
            }
            retries += 1;
            sleep(RETRY_PAUSE_MS * f64::from(1 << retries)).await;
            self.check_abort()?;
            sink.pending.clear();
            reply = self.request(sink.pos).await?.ok_or_else(|| self.changed())?;
            if reply.file != file {
                return Err(self.changed());
            }
            skip = sink.pos - reply.start;
        }
        cancel(&reply.reader);
        Ok(())
    }

    fn changed(&self) -> JsValue {
        coded_error("NETWORK", &format!("{} changed on the server during the download; load it again", self.url))
    }
}

/// Where downloaded bytes go: cut into chunks, each whole chunk pushed into
/// the loader and appended to the cache.
struct ChunkSink<'a> {
    record: Option<(&'a mut Record, &'a Cache)>,
    /// File offset of the first byte not yet in a whole chunk.
    pos: u64,
    pending: Vec<u8>,
}

impl ChunkSink<'_> {
    /// Takes the next `bytes` of the file; each chunk that completes goes
    /// into `loader` and the cache before the rest is taken.
    async fn take(
        &mut self,
        bytes: &Uint8Array,
        chunk_size: u32,
        size: u64,
        loader: &mut ModelLoader,
    ) -> Result<(), JsValue> {
        let mut offset = 0;
        while offset < bytes.length() && self.pos < size {
            let want = (chunk_size as u64).min(size - self.pos) as usize;
            let take = (bytes.length() - offset).min((want - self.pending.len()) as u32);
            let old = self.pending.len();
            self.pending.resize(old + take as usize, 0);
            bytes.subarray(offset, offset + take).copy_to(&mut self.pending[old..]);
            offset += take;
            if self.pending.len() == want {
                loader.push(&self.pending)?;
                if let Some((record, cache)) = &mut self.record {
                    cache.append_chunk(record, &self.pending).await?;
                }
                self.pos += want as u64;
                self.pending.clear();
            }
        }
        Ok(())
    }
}

/// The next piece of a response body, `None` at its end.
async fn read(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, JsValue> {
    let result = JsFuture::from(reader.read()).await?;
    if Reflect::get(&result, &"done".into())?.is_truthy() {
        return Ok(None);
    }
    Ok(Some(Reflect::get(&result, &"value".into())?.unchecked_into()))
}

/// Closes a response early; the runtime's rejection of that is expected, not unhandled.
fn cancel(reader: &ReadableStreamDefaultReader) {
    let closing = JsFuture::from(reader.cancel());
    wasm_bindgen_futures::spawn_local(async move {
        let _ = closing.await;
    });
}

async fn sleep(ms: f64) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

fn message(e: &JsValue) -> String {
    Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}
