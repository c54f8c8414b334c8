//! Which requests an instance is serving, so what it does (capability calls,
//! lines it prints) can be put under the right request.
//!
//! An instance serves several requests at once and wasmtime does not tell a
//! host call which guest task made it. So a call is attributed to a request
//! only when exactly one is in flight on its instance; with several, it is
//! recorded without a request (and, for traces, linked to every candidate).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderValue;

/// What the edge knows about one request, handed to the instance that
/// serves it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: HeaderValue,
    /// The component span of the request when it is traced.
    pub trace: Option<opentelemetry::Context>,
}

impl RequestContext {
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }
}

/// One instance of a component and the requests it is serving now.
#[derive(Debug)]
pub struct InstanceInfo {
    pub component: Arc<str>,
    /// Unique within the process (a counter, not reused).
    pub id: u64,
    in_flight: Mutex<Vec<(u64, RequestContext)>>,
}

/// Which requests an instance was serving at one moment.
pub enum Attribution {
    None,
    One(RequestContext),
    Several(Vec<RequestContext>),
}

impl InstanceInfo {
    pub fn new(component: Arc<str>) -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            component,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            in_flight: Mutex::new(Vec::new()),
        })
    }

    /// Records `request` as in flight until the returned guard is dropped.
    pub fn start(self: &Arc<Self>, request: RequestContext) -> InFlight {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.push((key, request));
        }
        InFlight {
            instance: self.clone(),
            key,
        }
    }

    /// The request being served, when there is exactly one.
    pub fn only_request(&self) -> Option<RequestContext> {
        let in_flight = self.in_flight.lock().ok()?;
        match in_flight.as_slice() {
            [(_, request)] => Some(request.clone()),
            _ => None,
        }
    }

    pub fn attribution(&self) -> Attribution {
        let Ok(in_flight) = self.in_flight.lock() else {
            return Attribution::None;
        };
        match in_flight.as_slice() {
            [] => Attribution::None,
            [(_, request)] => Attribution::One(request.clone()),
            several => Attribution::Several(several.iter().map(|(_, r)| r.clone()).collect()),
        }
    }
}

/// A request in flight on an instance; removes it when dropped.
pub struct InFlight {
    instance: Arc<InstanceInfo>,
    key: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.instance.in_flight.lock() {
            in_flight.retain(|(key, _)| *key != self.key);
        }
    }
}

thread_local! {
    /// The instance whose guest is calling into the host on this thread, set
    /// by the store's call hook while a host function runs (only while
    /// tracing is on).
    static CALLING: RefCell<Option<Arc<InstanceInfo>>> = const { RefCell::new(None) };
}

/// Marks `instance` as the caller of host functions on this thread until
/// [`leave`] (the store's call hook brackets each host call with these).
pub fn enter(instance: &Arc<InstanceInfo>) {
    CALLING.with(|calling| *calling.borrow_mut() = Some(instance.clone()));
}

pub fn leave() {
    CALLING.with(|calling| calling.borrow_mut().take());
}

/// The instance calling into the host on this thread, if any.
pub fn calling() -> Option<Arc<InstanceInfo>> {
    CALLING.with(|calling| calling.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &'static str) -> RequestContext {
        RequestContext {
            request_id: HeaderValue::from_static(id),
            trace: None,
        }
    }

    #[test]
    fn a_request_is_attributed_only_when_it_is_alone() {
        let instance = InstanceInfo::new("c".into());
        assert!(instance.only_request().is_none());
        let first = instance.start(request("a"));
        assert_eq!(instance.only_request().unwrap().request_id(), "a");
        let second = instance.start(request("b"));
        assert!(instance.only_request().is_none());
        assert!(matches!(instance.attribution(), Attribution::Several(ref r) if r.len() == 2));
        drop(first);
        assert_eq!(instance.only_request().unwrap().request_id(), "b");
        drop(second);
        assert!(matches!(instance.attribution(), Attribution::None));
    }
}
