//! Loading a model from a URL. The file arrives through HTTP Range requests:
//! first its header alone, so that a model that cannot fit is refused before
//! any weight is sent, then the rest. Bytes go into the engine's streaming
//! loader as they arrive and, where IndexedDB exists, into fixed-size chunks
//! of the model cache, gathered in JS memory. A dropped connection resumes
//! where it stopped within one load, and from the last whole chunk in a later
//! one; a cached model loads from IndexedDB without touching the network.

use super::cache::{request_persistence, Cache, Record};
use super::{coded_error, from_js, Engine, GpuDevice, ModelLoader, PIECE};
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortSignal, Headers, ReadableStream, ReadableStreamByobReader, ReadableStreamDefaultReader, Request, RequestInit,
    Response,
};

/// 4 MiB: the one chunk gathered in JS memory while a download is cached
/// (and each copy IndexedDB makes of it) stays small, with a few hundred
/// records for the largest models.
const DEFAULT_CHUNK_SIZE: u32 = 4 << 20;
/// The first request's bytes; each further request for the header asks for
/// as many again as it has, so that what is fetched past a header is less
/// than the header itself (6 MiB in a model with 262144 tokens).
const FIRST_REQUEST: u64 = 1 << 20;
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
    chat_template: Option<String>,
    /// `true` (the default): keep the download in IndexedDB where it can,
    /// else load it uncached with a warning; `false`: never cache;
    /// `"required"`: fail where it cannot be cached.
    cache: Option<CacheOption>,
    sha256: Option<String>,
    chunk_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CacheOption {
    On(bool),
    Named(String),
}

/// Where a URL's download goes besides the engine.
#[derive(Clone, Copy, PartialEq)]
enum CacheMode {
    Off,
    /// Into IndexedDB while it takes the bytes; a model it cannot take loads
    /// uncached.
    Prefer,
    /// Into IndexedDB, or the load fails.
    Required,
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
    if options.chunk_size == Some(0) {
        return Err(coded_error("INVALID_ARGUMENT", "chunkSize must be positive"));
    }
    let mode = match options.cache {
        None | Some(CacheOption::On(true)) => CacheMode::Prefer,
        Some(CacheOption::On(false)) => CacheMode::Off,
        Some(CacheOption::Named(name)) if name == "required" => CacheMode::Required,
        Some(CacheOption::Named(name)) => {
            return Err(coded_error("INVALID_ARGUMENT", &format!("cache is true, false or 'required', not '{name}'")))
        }
    };
    let progress = Progress { callback: on_progress, total: 0, reported: None };
    let required = |why: &str| coded_error("IO", &format!("{why}: the model cannot be cached (cache: 'required')"));
    let cache = match mode {
        CacheMode::Off => None,
        // Node and Deno have no IndexedDB: a URL loads uncached there.
        _ => match Cache::try_open().await {
            Ok(Some(cache)) => Some(cache),
            Ok(None) if mode == CacheMode::Required => return Err(required("this runtime has no IndexedDB")),
            Ok(None) => None,
            Err(e) => {
                let why = format!("IndexedDB cannot be opened here ({})", message(&e));
                if mode == CacheMode::Required {
                    return Err(required(&why));
                }
                progress.warn("IO", &format!("{why}: the model loads without being cached"));
                None
            }
        },
    };
    let mut job = Job {
        url,
        context_length: options.context_length,
        chat_template: options.chat_template,
        sha256: options.sha256.map(|s| s.to_ascii_lowercase()),
        chunk_size,
        chunk_size_given: options.chunk_size.is_some(),
        cache,
        required: mode == CacheMode::Required,
        progress,
        signal,
        gpu,
    };
    job.run().await
}

/// What identifies one version of a file on the server.
#[derive(Clone, PartialEq, Debug)]
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

/// An open response: its body holds bytes `at..end` of the file still to read.
struct Reply {
    reader: Reader,
    at: u64,
    end: u64,
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
        if self.callback.is_none() || self.reported.is_some_and(|r| loaded < self.total && loaded < r + (1 << 20)) {
            return;
        }
        self.reported = Some(loaded);
        self.emit(&[("phase", phase.into()), ("loaded", (loaded as f64).into())]);
    }

    /// A `warning` event: something went wrong that the load survives
    /// (the cache could not take the model). `code` names the cause.
    fn warn(&self, code: &str, message: &str) {
        let loaded = self.reported.unwrap_or(0) as f64;
        self.emit(&[
            ("phase", "warning".into()),
            ("code", code.into()),
            ("message", message.into()),
            ("loaded", loaded.into()),
        ]);
    }

    /// Calls the callback with an event of `fields` and the file's total.
    fn emit(&self, fields: &[(&str, JsValue)]) {
        let Some(callback) = &self.callback else { return };
        let event = Object::new();
        for (key, value) in fields.iter().chain([&("total", (self.total as f64).into())]) {
            let _ = Reflect::set(&event, &(*key).into(), value);
        }
        // A throwing callback is the page's bug; it does not stop the load.
        let _ = callback.call1(&JsValue::NULL, &event);
    }
}

struct Job {
    url: String,
    context_length: Option<u32>,
    chat_template: Option<String>,
    sha256: Option<String>,
    chunk_size: u32,
    /// Whether the caller chose `chunk_size`; if not, a half-cached
    /// download resumes with the chunks it began with.
    chunk_size_given: bool,
    cache: Option<Cache>,
    /// Fail rather than load uncached when the cache cannot take the model.
    required: bool,
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
            Some(r) if !self.chunk_size_given && r.chunk_size > 0 => {
                self.chunk_size = r.chunk_size;
                self.download(Some(r)).await
            }
            Some(_) => {
                self.forget().await;
                self.download(None).await
            }
            None => self.download(None).await,
        }
    }

    fn loader(&mut self, size: u64, verify: bool) -> Result<ModelLoader, JsValue> {
        let sha256 = if verify { self.sha256.clone() } else { None };
        ModelLoader::new(size as f64, self.context_length, sha256, self.gpu.take(), self.chat_template.clone())
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

    /// The cache could not take the model (`e`: a full quota, a failed
    /// write): unless the cache is required, the load goes on without it,
    /// with a warning, and what was stored of this file is removed (every
    /// other cached model stays as it was).
    async fn uncached(&self, e: JsValue) -> Result<(), JsValue> {
        if self.required {
            return Err(e);
        }
        let code = code_of(&e).unwrap_or_else(|| "IO".into());
        self.progress.warn(&code, &format!("the model loads without being cached: {}", message(&e)));
        self.forget().await;
        Ok(())
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
        let mut loaded = 0;
        let mut next = (count > 0).then(|| cache.read_chunk(&self.url, 0));
        for index in 0..count {
            self.check_abort()?;
            let reading = next.take().expect("read ahead");
            // The next chunk is read while this one is pushed.
            next = (index + 1 < count).then(|| cache.read_chunk(&self.url, index + 1));
            let Some(chunk) = reading.await? else {
                self.forget().await;
                return Err(coded_error(
                    "IO",
                    &format!("chunk {index} of the cached {} is missing; it was removed, load it again", self.url),
                ));
            };
            self.unless_bad(loader.push(&chunk)).await?;
            loaded += chunk.length() as u64;
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
            loader.finish().map(Engine::in_cache)
        }
        .await
    }

    /// Opens bytes `from..to` of the file (`to`: `None` for all the rest; the
    /// server may send more than asked). `None` when the server cannot serve
    /// that range (the file shrank).
    async fn request(&self, from: u64, to: Option<u64>) -> Result<Option<Reply>, JsValue> {
        let url = &self.url;
        let network = |what: &str| coded_error("NETWORK", &format!("could not fetch {url}: {what}"));
        let headers = Headers::new()?;
        let range = match to {
            Some(to) => format!("bytes={from}-{}", to - 1),
            None => format!("bytes={from}-"),
        };
        headers.set("Range", &range)?;
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
        let body = || -> Result<Reader, JsValue> {
            Ok(Reader::new(response.body().ok_or_else(|| network("the response has no body"))?))
        };
        let (start, end, size) = match response.status() {
            206 => match header("content-range").as_deref().and_then(parse_content_range) {
                Some(ContentRange { start, end, total }) => (start, end, total.or(length.map(|l| start + l))),
                // Content-Range is hidden from cross-origin pages that do not
                // expose it: the file's size is then known only from an
                // open range's length.
                None if to.is_some() => {
                    cancel_body(&response);
                    return Box::pin(self.request(from, None)).await;
                }
                None => (from, length.map(|l| from + l), length.map(|l| from + l)),
            },
            200 => (0, length, length),
            416 if from > 0 => return Ok(None),
            status => return Err(network(&format!("HTTP {status} {}", response.status_text()))),
        };
        let Some(size) = size else {
            // Pages are often sent without a length; a model file rarely is.
            let reader = body()?;
            let head = reader.read().await.ok().flatten().map(|b| b.to_vec()).unwrap_or_default();
            reader.cancel();
            if start == 0 && !head.starts_with(b"GGUF") {
                return Err(coded_error(
                    "INVALID_GGUF",
                    &format!("{url} is not a GGUF file (it is a page or another file): link to the .gguf file itself"),
                ));
            }
            return Err(network("the server did not send the file's size (Content-Length)"));
        };
        if start > from {
            cancel_body(&response);
            return Err(network(&format!("asked for bytes from {from}, the server sent them from {start}")));
        }
        Ok(Some(Reply {
            reader: body()?,
            at: start,
            end: end.unwrap_or(size).min(size),
            file: Validators { size, etag: header("etag"), last_modified: header("last-modified") },
        }))
    }

    async fn download(&mut self, resume: Option<Record>) -> Result<Engine, JsValue> {
        let mut record = resume;
        let from = record.as_ref().map_or(0, Record::stored_bytes);
        // A fresh download asks for the start of the file: the header, which
        // says whether the model fits, before any weight is sent.
        let first = |from: u64| (from == 0).then_some(FIRST_REQUEST);
        let mut reply = self.request(from, first(from)).await?;
        let changed = match (&record, &reply) {
            (Some(r), Some(reply)) => Validators::of(r) != reply.file,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if changed {
            // The file on the server is not the one half downloaded: start over.
            self.forget().await;
            record = None;
            reply = self.request(0, first(0)).await?;
        }
        let reply = reply.ok_or_else(|| coded_error("NETWORK", &format!("{} cannot be fetched by range", self.url)))?;
        let size = reply.file.size;
        self.progress.total = size;
        let mut loader = match self.loader(size, self.sha256.is_some()) {
            Ok(loader) => loader,
            Err(e) => {
                reply.reader.cancel();
                return Err(e);
            }
        };
        let mut cache = self.cache.clone();
        let result = async {
            if let (None, Some(c)) = (&record, &cache) {
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
                let stored = async {
                    check_quota(size).await?;
                    c.put_record(&fresh).await
                };
                match stored.await {
                    Ok(()) => {
                        request_persistence().await;
                        record = Some(fresh);
                    }
                    Err(e) => {
                        if let Err(e) = self.uncached(e).await {
                            reply.reader.cancel();
                            return Err(e);
                        }
                        cache = None;
                    }
                }
            }
            let mut pos = 0;
            if let (Some(r), Some(cache)) = (&record, &cache) {
                pos = self.replay(cache, r.chunks_stored, &mut loader).await?;
            }
            let staging = cache.is_some().then(|| Uint8Array::new_with_length(self.chunk_size));
            let mut sink =
                Sink { cache: record.as_mut().zip(cache.as_ref()).zip(staging), failed: None, pos, staged: 0 };
            let mut reply = Some(reply);
            while sink.pos < size {
                // The header first, in requests that double what has come,
                // until the loader has read and checked it; then the rest.
                let header = loader.read_header();
                if let (Err(_), Some(r)) = (&header, &reply) {
                    r.reader.cancel();
                }
                let to =
                    if self.unless_bad(header).await? { size } else { (sink.pos * 2).max(FIRST_REQUEST).min(size) };
                let open = match reply.take() {
                    Some(r) if r.end > sink.pos => r,
                    Some(r) => {
                        r.reader.cancel();
                        self.open(sink.pos, to, &r.file).await?
                    }
                    None => unreachable!("a reply is kept between requests"),
                };
                reply = Some(self.stream(open, to, &mut sink, &mut loader).await?);
            }
            if let Some(r) = reply {
                r.reader.cancel();
            }
            // Every byte is in; what remains is building the engine.
            self.progress.report("load", size);
            self.unless_bad(loader.verify()).await?;
            let mut cached = false;
            if let Some(((record, cache), _)) = sink.cache {
                record.complete = true;
                record.sha256.clone_from(&self.sha256);
                match cache.put_record(record).await {
                    Ok(()) => cached = true,
                    Err(e) => self.uncached(e).await?,
                }
            }
            let engine = loader.finish()?;
            Ok(if cached { engine.in_cache() } else { engine })
        }
        .await;
        let refused = |e: &JsValue| {
            matches!(
                code_of(e).as_deref(),
                Some("OUT_OF_MEMORY" | "UNSUPPORTED_ARCH" | "UNSUPPORTED_QUANT" | "TOKENIZER")
            )
        };
        match result {
            Err(e) if code_of(&e).as_deref() == Some("QUOTA_EXCEEDED") => {
                // (cache: 'required') Give the space back; every other cached
                // model stays as it was.
                self.forget().await;
                Err(e)
            }
            // The engine refused the file before it was whole: what was
            // stored of it would never load.
            Err(e) if refused(&e) && record.as_ref().is_some_and(|r| !r.complete) => {
                self.forget().await;
                Err(e)
            }
            result => self.unless_bad(result).await,
        }
    }

    /// Opens bytes `from..to` of `file`, which must not have changed since the download began.
    async fn open(&self, from: u64, to: u64, file: &Validators) -> Result<Reply, JsValue> {
        let to = (to < file.size).then_some(to);
        let reply = self.request(from, to).await?.ok_or_else(|| self.changed())?;
        if reply.file != *file {
            reply.reader.cancel();
            return Err(self.changed());
        }
        Ok(reply)
    }

    /// Reads `reply` into `sink` until byte `to` is in (or the reply ends),
    /// asking again from where it stopped after a dropped connection. Returns
    /// the reply it read last, which may hold more.
    async fn stream(
        &mut self,
        mut reply: Reply,
        to: u64,
        sink: &mut Sink<'_>,
        loader: &mut ModelLoader,
    ) -> Result<Reply, JsValue> {
        let file = reply.file.clone();
        let mut retries = 0;
        while sink.pos < to.min(reply.end) {
            if let Err(e) = self.check_abort() {
                reply.reader.cancel();
                return Err(e);
            }
            let failure = match reply.reader.read().await {
                Ok(Some(bytes)) => {
                    // A server may start before the byte asked for.
                    let skipped = (sink.pos - reply.at).min(bytes.length() as u64);
                    reply.at += bytes.length() as u64;
                    let fresh = bytes.subarray(skipped as u32, bytes.length());
                    let mut result = sink.take(&fresh, self.chunk_size, file.size, loader).await;
                    if let (Ok(()), Some(e)) = (&result, sink.failed.take()) {
                        result = self.uncached(e).await;
                    }
                    if result.is_err() {
                        reply.reader.cancel();
                    }
                    self.unless_bad(result).await?;
                    if fresh.length() > 0 {
                        retries = 0;
                    }
                    self.progress.report("download", sink.pos);
                    continue;
                }
                Ok(None) => "the connection closed early".to_string(),
                Err(e) => {
                    self.check_abort()?;
                    message(&e)
                }
            };
            reply.reader.cancel();
            if retries == RETRIES {
                return Err(coded_error(
                    "NETWORK",
                    &format!("downloading {} failed at byte {} of {}: {failure}", self.url, sink.pos, file.size),
                ));
            }
            retries += 1;
            sleep(RETRY_PAUSE_MS * f64::from(1 << retries)).await;
            self.check_abort()?;
            reply = self.open(sink.pos, to.max(reply.end), &file).await?;
        }
        Ok(reply)
    }

    fn changed(&self) -> JsValue {
        coded_error("NETWORK", &format!("{} changed on the server during the download; load it again", self.url))
    }
}

/// Refuses a download that the origin's storage quota cannot take, before it
/// starts (where the runtime can tell: `navigator.storage.estimate()`).
async fn check_quota(size: u64) -> Result<(), JsValue> {
    let global = js_sys::global();
    let estimate = (|| {
        let storage = Reflect::get(&Reflect::get(&global, &"navigator".into()).ok()?, &"storage".into()).ok()?;
        let estimate: Function = Reflect::get(&storage, &"estimate".into()).ok()?.dyn_into().ok()?;
        estimate.call0(&storage).ok()?.dyn_into::<Promise>().ok()
    })();
    let Some(estimate) = estimate else { return Ok(()) };
    let Ok(estimate) = JsFuture::from(estimate).await else { return Ok(()) };
    let number = |key: &str| Reflect::get(&estimate, &key.into()).ok().and_then(|v| v.as_f64());
    let (Some(quota), usage) = (number("quota"), number("usage").unwrap_or(0.0)) else { return Ok(()) };
    let free = (quota - usage).max(0.0);
    if (size as f64) > free {
        let mib = |b: f64| format!("{:.0} MiB", b / (1u64 << 20) as f64);
        return Err(coded_error(
            "QUOTA_EXCEEDED",
            &format!(
                "the model ({}) is larger than the storage this site may still use ({} of {}): delete a cached model \
                 (Generator.cache.delete) to make room",
                mib(size as f64),
                mib(free),
                mib(quota)
            ),
        ));
    }
    Ok(())
}

/// Where downloaded bytes go: into the loader as they arrive and, when the
/// download is cached, into a chunk gathered in JS memory (`staging`, one
/// chunk long, reused) that is appended to the cache once whole.
struct Sink<'a> {
    cache: Option<((&'a mut Record, &'a Cache), Uint8Array)>,
    /// Why the cache stopped taking chunks, for the job to decide on
    /// ([`Job::uncached`]): the bytes still go into the loader.
    failed: Option<JsValue>,
    /// File offset of the next byte.
    pos: u64,
    /// Bytes of the chunk being gathered.
    staged: u32,
}

impl Sink<'_> {
    async fn take(
        &mut self,
        bytes: &Uint8Array,
        chunk_size: u32,
        size: u64,
        loader: &mut ModelLoader,
    ) -> Result<(), JsValue> {
        let mut offset = 0;
        while offset < bytes.length() && self.pos < size {
            let chunk_end = (self.pos - self.staged as u64 + chunk_size as u64).min(size);
            let take = (bytes.length() - offset).min((chunk_end - self.pos) as u32);
            let piece = bytes.subarray(offset, offset + take);
            loader.push(&piece)?;
            offset += take;
            self.pos += take as u64;
            let Some(((record, cache), staging)) = &mut self.cache else { continue };
            staging.set(&piece, self.staged);
            self.staged += take;
            if self.pos == chunk_end {
                // IndexedDB clones what it stores as `put` is called: the
                // staging buffer is free again at once. A short last chunk is
                // stored as a copy of its own length.
                let whole = self.staged == chunk_size;
                let chunk = if whole { staging.clone() } else { staging.slice(0, self.staged) };
                self.staged = 0;
                if let Err(e) = cache.append_chunk(record, &chunk).await {
                    self.cache = None;
                    self.failed = Some(e);
                }
            }
        }
        Ok(())
    }
}

/// A response body's reader: bring-your-own-buffer where the runtime's
/// fetch offers it, so that reading a model allocates one buffer in all
/// instead of one per piece (garbage the collector may leave for long).
enum Reader {
    Byob { reader: ReadableStreamByobReader, buffer: std::cell::RefCell<Option<js_sys::ArrayBuffer>> },
    Default(ReadableStreamDefaultReader),
}

impl Reader {
    fn new(body: ReadableStream) -> Reader {
        match ReadableStreamByobReader::new(&body) {
            Ok(reader) => Reader::Byob { reader, buffer: Default::default() },
            Err(_) => Reader::Default(body.get_reader().unchecked_into()),
        }
    }

    /// The next piece of the body, `None` at its end. The piece is valid
    /// until the next read.
    async fn read(&self) -> Result<Option<Uint8Array>, JsValue> {
        let result = match self {
            Reader::Default(reader) => JsFuture::from(reader.read()).await?,
            Reader::Byob { reader, buffer } => {
                let buf = buffer.borrow_mut().take().unwrap_or_else(|| js_sys::ArrayBuffer::new(PIECE));
                let view = Uint8Array::new_with_byte_offset_and_length(&buf, 0, buf.byte_length());
                JsFuture::from(reader.read_with_array_buffer_view(&view)).await?
            }
        };
        let value = Reflect::get(&result, &"value".into())?;
        if let (Reader::Byob { buffer, .. }, Some(view)) = (self, value.dyn_ref::<Uint8Array>()) {
            // The buffer came back (transferred) with the bytes read into it.
            *buffer.borrow_mut() = Some(view.buffer());
        }
        if Reflect::get(&result, &"done".into())?.is_truthy() {
            return Ok(None);
        }
        Ok(Some(value.unchecked_into()))
    }

    /// Closes a response early; the runtime's rejection of that is expected, not unhandled.
    fn cancel(&self) {
        let promise = match self {
            Reader::Default(reader) => reader.cancel(),
            Reader::Byob { reader, .. } => reader.cancel(),
        };
        let closing = JsFuture::from(promise);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = closing.await;
        });
    }
}

/// Closes a response that will not be read.
fn cancel_body(response: &Response) {
    if let Some(body) = response.body() {
        let closing = JsFuture::from(body.cancel());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = closing.await;
        });
    }
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

/// `bytes START-END/TOTAL` (TOTAL may be `*`): bytes `start..end` of `total`.
#[derive(Debug, PartialEq)]
struct ContentRange {
    start: u64,
    end: Option<u64>,
    total: Option<u64>,
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, last) = range.split_once('-')?;
    let end = last.trim().parse::<u64>().ok().map(|last| last + 1);
    Some(ContentRange { start: start.trim().parse().ok()?, end, total: total.trim().parse().ok() })
}
