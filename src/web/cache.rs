//! The model cache: each downloaded GGUF is kept in IndexedDB as fixed-size
//! chunks plus one record, so an interrupted download resumes from its last
//! whole chunk and a later load reads the chunks back in order, offline.
//!
//! A chunk and the record that counts it are written in one transaction: the
//! record never claims a chunk that is not there.

use super::idb;
use super::{coded_error, from_js, to_js};
use js_sys::{Array, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use std::future::Future;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransactionMode};

const DB_NAME: &str = "webslm";
const DB_VERSION: u32 = 1;
/// Records, keyed by URL.
const MODELS: &str = "models";
/// Chunk bytes, keyed by `[url, index]`.
const CHUNKS: &str = "chunks";

/// What the cache knows about one model file.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub url: String,
    pub size: u64,
    /// The server's validators when the download began: a resumed download
    /// must see the same ones, or the file changed and it starts over.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub chunk_size: u32,
    pub chunks_stored: u32,
    /// Every chunk is stored (and the SHA-256 matched, when one was given).
    pub complete: bool,
    /// Lowercase hex, when the download was verified against one.
    pub sha256: Option<String>,
    /// Milliseconds since the epoch.
    pub updated_at: f64,
}

impl Record {
    pub fn chunk_count(&self) -> u32 {
        self.size.div_ceil(self.chunk_size as u64) as u32
    }

    pub fn stored_bytes(&self) -> u64 {
        (self.chunks_stored as u64 * self.chunk_size as u64).min(self.size)
    }
}

/// A cached model as `Generator.cache.list()` describes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    url: &'a str,
    size: u64,
    downloaded: u64,
    complete: bool,
    sha256: &'a Option<String>,
    etag: &'a Option<String>,
    updated_at: f64,
}

/// A storage failure as the JS API reports it: a full quota is
/// `QUOTA_EXCEEDED`, anything else `IO`.
pub fn storage_error(e: JsValue) -> JsValue {
    let name = Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    let message = Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
    if name == "QuotaExceededError" {
        coded_error(
            "QUOTA_EXCEEDED",
            "the browser's storage quota is full: delete a cached model (Generator.cache.delete) to make room",
        )
    } else {
        coded_error("IO", &format!("model cache (IndexedDB): {name} {message}"))
    }
}

fn chunk_key(url: &str, index: u32) -> JsValue {
    Array::of2(&url.into(), &index.into()).into()
}

/// Every chunk key of `url`.
fn chunk_range(url: &str) -> Result<IdbKeyRange, JsValue> {
    IdbKeyRange::bound(&chunk_key(url, 0), &Array::of2(&url.into(), &f64::INFINITY.into()))
}

/// An open connection to the cache database.
#[derive(Clone)]
pub struct Cache {
    db: IdbDatabase,
}

impl Cache {
    /// The cache, or `None` where there is no IndexedDB (Node, Deno) or it
    /// cannot be opened (some private-browsing modes).
    pub async fn open() -> Option<Cache> {
        Cache::try_open().await.ok().flatten()
    }

    /// The cache; `None` where the runtime has no IndexedDB (Node, Deno),
    /// an error where it has one that cannot be opened (some private
    /// windows, storage turned off).
    pub async fn try_open() -> Result<Option<Cache>, JsValue> {
        let Some(factory) = idb::factory() else { return Ok(None) };
        let db = idb::open(&factory, DB_NAME, DB_VERSION, |db| {
            let names = db.object_store_names();
            for store in [MODELS, CHUNKS] {
                if !names.contains(store) {
                    db.create_object_store(store)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(Some(Cache { db }))
    }

    fn store(
        &self,
        name: &str,
        mode: IdbTransactionMode,
    ) -> Result<(web_sys::IdbTransaction, IdbObjectStore), JsValue> {
        let tx = self.db.transaction_with_str_and_mode(name, mode)?;
        let store = tx.object_store(name)?;
        Ok((tx, store))
    }

    fn both(&self) -> Result<(web_sys::IdbTransaction, IdbObjectStore, IdbObjectStore), JsValue> {
        let names = Array::of2(&MODELS.into(), &CHUNKS.into());
        let tx = self.db.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)?;
        let (models, chunks) = (tx.object_store(MODELS)?, tx.object_store(CHUNKS)?);
        Ok((tx, models, chunks))
    }

    pub async fn record(&self, url: &str) -> Result<Option<Record>, JsValue> {
        let (_, store) = self.store(MODELS, IdbTransactionMode::Readonly).map_err(storage_error)?;
        let value = idb::request(&store.get(&url.into()).map_err(storage_error)?).await.map_err(storage_error)?;
        if value.is_undefined() {
            return Ok(None);
        }
        // A record this version cannot read is treated as absent (and later overwritten).
        Ok(from_js::<Record>(value, "cache record").ok())
    }

    pub async fn put_record(&self, record: &Record) -> Result<(), JsValue> {
        let (tx, store) = self.store(MODELS, IdbTransactionMode::Readwrite).map_err(storage_error)?;
        store.put_with_key(&to_js(record), &record.url.as_str().into()).map_err(storage_error)?;
        idb::commit(&tx).await.map_err(storage_error)
    }

    /// Stores chunk `record.chunks_stored` and counts it in the record,
    /// atomically. `bytes` is cloned before this returns: the caller may
    /// reuse it at once.
    pub async fn append_chunk(&self, record: &mut Record, bytes: &Uint8Array) -> Result<(), JsValue> {
        let mut next = record.clone();
        next.chunks_stored += 1;
        next.updated_at = js_sys::Date::now();
        let (tx, models, chunks) = self.both().map_err(storage_error)?;
        chunks.put_with_key(bytes, &chunk_key(&record.url, record.chunks_stored)).map_err(storage_error)?;
        models.put_with_key(&to_js(&next), &record.url.as_str().into()).map_err(storage_error)?;
        idb::commit(&tx).await.map_err(storage_error)?;
        *record = next;
        Ok(())
    }

    /// Chunk `index` of `url`; `None` if it is missing. The read starts now,
    /// so that the next chunk can be on its way while this one is pushed.
    pub fn read_chunk(&self, url: &str, index: u32) -> impl Future<Output = Result<Option<Uint8Array>, JsValue>> {
        let request = self
            .store(CHUNKS, IdbTransactionMode::Readonly)
            .and_then(|(_, store)| store.get(&chunk_key(url, index)))
            .map(|r| idb::request(&r))
            .map_err(storage_error);
        async move {
            let value = request?.await.map_err(storage_error)?;
            Ok(value.dyn_into::<Uint8Array>().ok())
        }
    }

    /// How many chunks of `url` are stored.
    pub async fn count_chunks(&self, url: &str) -> Result<u32, JsValue> {
        let (_, store) = self.store(CHUNKS, IdbTransactionMode::Readonly).map_err(storage_error)?;
        let range = chunk_range(url).map_err(storage_error)?;
        let count = idb::request(&store.count_with_key(&range).map_err(storage_error)?).await.map_err(storage_error)?;
        Ok(count.as_f64().unwrap_or(0.0) as u32)
    }

    /// Removes `url`'s record and chunks; false if it was not cached.
    pub async fn delete(&self, url: &str) -> Result<bool, JsValue> {
        let existed = self.record(url).await?.is_some() || self.count_chunks(url).await? > 0;
        let (tx, models, chunks) = self.both().map_err(storage_error)?;
        models.delete(&url.into()).map_err(storage_error)?;
        let range = chunk_range(url).map_err(storage_error)?;
        chunks.delete(&range).map_err(storage_error)?;
        idb::commit(&tx).await.map_err(storage_error)?;
        Ok(existed)
    }

    pub async fn clear(&self) -> Result<(), JsValue> {
        let (tx, models, chunks) = self.both().map_err(storage_error)?;
        models.clear().map_err(storage_error)?;
        chunks.clear().map_err(storage_error)?;
        idb::commit(&tx).await.map_err(storage_error)
    }

    pub async fn records(&self) -> Result<Vec<Record>, JsValue> {
        let (_, store) = self.store(MODELS, IdbTransactionMode::Readonly).map_err(storage_error)?;
        let all = idb::request(&store.get_all().map_err(storage_error)?).await.map_err(storage_error)?;
        let all: Array = all.unchecked_into();
        Ok(all.iter().filter_map(|v| from_js::<Record>(v, "cache record").ok()).collect())
    }
}

/// `navigator.storage[method]()`'s result, where the runtime has a storage manager.
async fn storage_manager(method: &str) -> Option<JsValue> {
    let storage = Reflect::get(&Reflect::get(&js_sys::global(), &"navigator".into()).ok()?, &"storage".into()).ok()?;
    let function = Reflect::get(&storage, &method.into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
    let promise = function.call0(&storage).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    JsFuture::from(promise).await.ok()
}

/// Asks the browser not to evict the cache under storage pressure. The
/// answer changes nothing here.
pub async fn request_persistence() {
    storage_manager("persist").await;
}

/// `Generator.cache.list()`: every cached or partly downloaded model.
#[wasm_bindgen(js_name = cacheList)]
pub async fn cache_list() -> Result<JsValue, JsValue> {
    let Some(cache) = Cache::open().await else { return Ok(Array::new().into()) };
    let records = cache.records().await?;
    let entries: Vec<Entry> = records
        .iter()
        .map(|r| Entry {
            url: &r.url,
            size: r.size,
            downloaded: r.stored_bytes(),
            complete: r.complete,
            sha256: &r.sha256,
            etag: &r.etag,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(to_js(&entries))
}

/// `Generator.cache.delete(url)`: true if something was removed.
#[wasm_bindgen(js_name = cacheDelete)]
pub async fn cache_delete(url: String) -> Result<bool, JsValue> {
    match Cache::open().await {
        Some(cache) => cache.delete(&url).await,
        None => Ok(false),
    }
}

/// `Generator.cache.clear()`: removes every cached model.
#[wasm_bindgen(js_name = cacheClear)]
pub async fn cache_clear() -> Result<(), JsValue> {
    match Cache::open().await {
        Some(cache) => cache.clear().await,
        None => Ok(()),
    }
}

/// `Generator.cache.estimate()`: bytes held by cached models, and the
/// origin's usage and quota where the runtime tells them.
#[wasm_bindgen(js_name = cacheEstimate)]
pub async fn cache_estimate() -> Result<JsValue, JsValue> {
    let models: u64 = match Cache::open().await {
        Some(cache) => cache.records().await?.iter().map(Record::stored_bytes).sum(),
        None => 0,
    };
    let result = js_sys::Object::new();
    Reflect::set(&result, &"models".into(), &(models as f64).into())?;
    if let Some(estimate) = storage_manager("estimate").await {
        for key in ["usage", "quota"] {
            Reflect::set(&result, &key.into(), &Reflect::get(&estimate, &key.into())?)?;
        }
    }
    Ok(result.into())
}
