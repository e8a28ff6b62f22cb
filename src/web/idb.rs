//! A small async face over IndexedDB's event-based API: open a database
//! (creating its stores on first use), wait for a request, wait for a
//! transaction to commit. Enough for the model cache and nothing more.
//!
//! Writes are awaited at the transaction, not the request: a full quota
//! often surfaces only when the transaction commits.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbRequest, IdbTransaction};

/// The global `indexedDB`, present in browsers and their workers (and in Node
/// when a polyfill installs one); `None` elsewhere.
pub fn factory() -> Option<IdbFactory> {
    let value = Reflect::get(&js_sys::global(), &"indexedDB".into()).ok()?;
    (!value.is_undefined() && !value.is_null()).then(|| value.unchecked_into())
}

/// Settles with the first of two callbacks that `arm` installs; `value` and
/// `error` are read when the event fires. The callbacks are installed now,
/// not when the future is first polled, so that an event that fires before
/// then is not missed.
fn first_of<V: Fn() -> JsValue + 'static, E: Fn() -> JsValue + 'static>(
    arm: Box<dyn FnOnce(&Function, &Function) + '_>,
    value: V,
    error: E,
) -> impl std::future::Future<Output = Result<JsValue, JsValue>> + use<V, E> {
    let mut arm = Some(arm);
    let mut handlers = None;
    let mut value = Some(value);
    let mut error = Some(error);
    let promise = Promise::new(&mut |resolve, reject| {
        let (value, error) = (value.take().expect("called once"), error.take().expect("called once"));
        let on_ok = Closure::<dyn FnMut()>::new(move || {
            let _ = resolve.call1(&JsValue::UNDEFINED, &value());
        });
        let on_err = Closure::<dyn FnMut()>::new(move || {
            let _ = reject.call1(&JsValue::UNDEFINED, &error());
        });
        (arm.take().expect("called once"))(on_ok.as_ref().unchecked_ref(), on_err.as_ref().unchecked_ref());
        handlers = Some((on_ok, on_err));
    });
    async move {
        let result = JsFuture::from(promise).await;
        drop(handlers);
        result
    }
}

/// The result of a request, or the `DOMException` it failed with. Listens
/// from the call on: the request may be awaited later.
pub fn request(request: &IdbRequest) -> impl std::future::Future<Output = Result<JsValue, JsValue>> + use<> {
    let (ok, err) = (request.clone(), request.clone());
    let waiting = first_of(
        Box::new(|on_ok, on_err| {
            request.set_onsuccess(Some(on_ok));
            request.set_onerror(Some(on_err));
        }),
        move || ok.result().unwrap_or(JsValue::UNDEFINED),
        move || err.error().ok().flatten().map_or_else(|| "request failed".into(), JsValue::from),
    );
    let request = request.clone();
    async move {
        let result = waiting.await;
        request.set_onsuccess(None);
        request.set_onerror(None);
        result
    }
}

/// Waits until `tx` commits; an aborted transaction gives its error.
pub async fn commit(tx: &IdbTransaction) -> Result<(), JsValue> {
    let err = tx.clone();
    let result = first_of(
        Box::new(|on_ok, on_err| {
            tx.set_oncomplete(Some(on_ok));
            tx.set_onabort(Some(on_err));
        }),
        || JsValue::UNDEFINED,
        move || err.error().map_or_else(|| "transaction aborted".into(), JsValue::from),
    )
    .await;
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    result.map(drop)
}

/// Opens database `name` at `version`, calling `upgrade` when it is new or
/// older (inside the version-change transaction, as IndexedDB requires).
pub async fn open(
    factory: &IdbFactory,
    name: &str,
    version: u32,
    upgrade: impl Fn(&IdbDatabase) -> Result<(), JsValue> + 'static,
) -> Result<IdbDatabase, JsValue> {
    let req: IdbOpenDbRequest = factory.open_with_u32(name, version)?;
    let target = req.clone();
    let on_upgrade = Closure::<dyn FnMut()>::new(move || {
        let upgraded = target.result().and_then(|db| upgrade(db.unchecked_ref()));
        if upgraded.is_err() {
            // Aborting the version change makes the open fail with an error.
            if let Some(tx) = target.transaction() {
                let _ = tx.abort();
            }
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let result = request(&req).await;
    req.set_onupgradeneeded(None);
    drop(on_upgrade);
    let db: IdbDatabase = result?.unchecked_into();
    // Let a newer version of this package, in another tab, upgrade the schema.
    let closing = db.clone();
    let on_version_change = Closure::<dyn FnMut()>::new(move || closing.close());
    db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
    on_version_change.forget();
    Ok(db)
}
