//! Concurrency slots: the app-wide limit every request takes, then the
//! limit of its component (`[component.<id>]` in nexa.toml), which may
//! widen while the component has the host to itself.
//!
//! A CPU-heavy component (bcrypt logins) is held to `max_concurrent_requests`
//! so that it cannot take every core from other routes; with
//! `max_concurrent_requests_when_alone` it may run more at once while no
//! other component's request is admitted nor has been for [`QUIET`], e.g.
//! logins on both cores of an otherwise idle host. (Without the quiet
//! period, the gaps between a busy client's requests looked idle, and a
//! request arriving meanwhile waited about one password hash.) A request
//! that took such an extra slot keeps it to the end; requests arriving for
//! other components then share the cores with it (running guests yield at
//! every epoch tick).

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::host::ComponentLimits;

/// How long no other component's request must have been admitted before a
/// component counts as alone.
pub const QUIET: Duration = Duration::from_millis(50);

/// The app-wide slots (`max_concurrent_requests`).
pub struct AppSlots {
    semaphore: Arc<Semaphore>,
    size: usize,
    /// The clock of the components' quiet periods.
    since: Instant,
    /// Requests admitted so far.
    admissions: AtomicU64,
}

/// A request's place under the app-wide limit.
pub type AppPermit = OwnedSemaphorePermit;

/// No slot came free within the queue timeout: the request is shed.
#[derive(Debug)]
pub struct Overloaded;

impl AppSlots {
    pub fn new(size: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(size)),
            size,
            since: Instant::now(),
            admissions: AtomicU64::new(0),
        }
    }

    /// Waits up to `wait` for a slot.
    pub async fn acquire(&self, wait: Duration) -> Result<AppPermit, Overloaded> {
        let permit = within(wait, self.semaphore.clone().acquire_owned()).await?;
        self.admissions.fetch_add(1, Ordering::AcqRel);
        Ok(permit)
    }

    fn now_us(&self) -> u64 {
        self.since.elapsed().as_micros() as u64
    }

    /// Requests holding an app-wide slot now.
    fn admitted(&self) -> usize {
        self.size - self.semaphore.available_permits()
    }
}

/// One component's slots.
pub struct ComponentSlots {
    /// `max_concurrent_requests`: always available to the component.
    base: Arc<Semaphore>,
    /// The slots beyond them, up to `max_concurrent_requests_when_alone`.
    extra: Option<Arc<Semaphore>>,
    /// Signalled when an extra slot is given back, for the requests waiting.
    extra_freed: Notify,
    /// This component's requests holding an app-wide slot (waiting or
    /// running): when it is every admitted request, the component is alone.
    admitted: AtomicUsize,
    /// This component's requests admitted so far; the app's admissions
    /// beyond them are other components' (as counted at the last check).
    own_admissions: AtomicU64,
    others_at_last_check: AtomicU64,
    /// When another component's request was last seen (µs on the app's
    /// clock): in flight at a check, or admitted since the one before.
    others_seen_us: AtomicU64,
    /// How long a request waits for a slot before it is shed.
    wait: Duration,
}

/// A request's place under its component's limit.
pub struct ComponentPermit {
    /// `None` only while dropping.
    permit: Option<OwnedSemaphorePermit>,
    admission: Option<Admission>,
    extra: bool,
}

impl Drop for ComponentPermit {
    fn drop(&mut self) {
        // Slot and count are given back before anyone is woken, so that
        // they can take the slot, and see whether they are alone.
        drop(self.permit.take());
        if let Some(admission) = self.admission.take() {
            let slots = admission.0.clone();
            drop(admission);
            if self.extra {
                slots.extra_freed.notify_waiters();
            }
        }
    }
}

/// One of the component's admitted requests, counted while it lives (also
/// while it waits, and whether its wait ends in a slot, a timeout or the
/// client going away).
struct Admission(Arc<ComponentSlots>);

impl Admission {
    fn new(slots: &Arc<ComponentSlots>) -> Self {
        slots.admitted.fetch_add(1, Ordering::AcqRel);
        Self(slots.clone())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ComponentSlots {
    /// `queue_timeout` is the app's, used when the component sets none.
    pub fn new(limits: &ComponentLimits, queue_timeout: Duration) -> Arc<Self> {
        let base = limits.max_concurrent_requests.get();
        let extra = limits
            .max_concurrent_requests_when_alone
            .map(|alone| alone.get().saturating_sub(base))
            .filter(|extra| *extra > 0)
            .map(|extra| Arc::new(Semaphore::new(extra)));
        Arc::new(Self {
            base: Arc::new(Semaphore::new(base)),
            extra,
            extra_freed: Notify::new(),
            admitted: AtomicUsize::new(0),
            own_admissions: AtomicU64::new(0),
            others_at_last_check: AtomicU64::new(0),
            others_seen_us: AtomicU64::new(0),
            wait: limits
                .queue_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(queue_timeout),
        })
    }

    /// Takes one of the component's slots for a request that holds an
    /// app-wide one: a base slot, or an extra one while every admitted
    /// request is this component's; waits up to `wait`.
    pub async fn acquire(self: &Arc<Self>, app: &AppSlots) -> Result<ComponentPermit, Overloaded> {
        let admission = Admission::new(self);
        self.own_admissions.fetch_add(1, Ordering::AcqRel);
        let (permit, extra) = within(self.wait, self.take(app)).await?;
        Ok(ComponentPermit {
            permit: Some(permit),
            admission: Some(admission),
            extra,
        })
    }

    async fn take(
        &self,
        app: &AppSlots,
    ) -> Result<(OwnedSemaphorePermit, bool), tokio::sync::AcquireError> {
        loop {
            // Registered before the checks, so a slot freed in between
            // still wakes this request.
            let mut extra_freed = pin!(self.extra_freed.notified());
            extra_freed.as_mut().enable();
            if let Ok(permit) = self.base.clone().try_acquire_owned() {
                return Ok((permit, false));
            }
            if let Some(extra) = &self.extra
                && self.alone(app)
                && let Ok(permit) = extra.clone().try_acquire_owned()
            {
                return Ok((permit, true));
            }
            tokio::select! {
                permit = self.base.clone().acquire_owned() => return permit.map(|p| (p, false)),
                () = extra_freed => {}
            }
        }
    }

    /// Whether every request holding an app-wide slot is this component's,
    /// and no other component's has been seen for [`QUIET`]. Checks happen
    /// when a request of this component arrives or an extra slot frees, so
    /// an admission between two checks counts as seen at the later one.
    fn alone(&self, app: &AppSlots) -> bool {
        let now = app.now_us();
        let others = app
            .admissions
            .load(Ordering::Acquire)
            .saturating_sub(self.own_admissions.load(Ordering::Acquire));
        let before = self.others_at_last_check.swap(others, Ordering::AcqRel);
        if others != before || app.admitted() > self.admitted.load(Ordering::Acquire) {
            self.others_seen_us.fetch_max(now, Ordering::AcqRel);
            return false;
        }
        now.saturating_sub(self.others_seen_us.load(Ordering::Acquire)) >= QUIET.as_micros() as u64
    }
}

/// Waits up to `wait` for a semaphore permit future.
async fn within<T, E>(
    wait: Duration,
    acquire: impl Future<Output = Result<T, E>>,
) -> Result<T, Overloaded> {
    match tokio::time::timeout(wait, acquire).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(Overloaded),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    fn limits(base: usize, alone: Option<usize>) -> ComponentLimits {
        ComponentLimits {
            max_concurrent_requests: NonZeroUsize::new(base).unwrap(),
            max_concurrent_requests_when_alone: alone.map(|n| NonZeroUsize::new(n).unwrap()),
            queue_timeout_ms: Some(200),
        }
    }

    /// A request as the edge admits it: an app-wide slot, then the
    /// component's.
    async fn admit(
        app: &AppSlots,
        slots: &Arc<ComponentSlots>,
    ) -> Result<(AppPermit, ComponentPermit), Overloaded> {
        let permit = app.acquire(Duration::from_millis(200)).await?;
        Ok((permit, slots.acquire(app).await?))
    }

    /// Past the quiet period since the app started.
    async fn quiet() {
        tokio::time::sleep(QUIET + Duration::from_millis(10)).await;
    }

    #[tokio::test]
    async fn alone_a_component_takes_its_extra_slots_and_no_more() {
        let app = AppSlots::new(16);
        let slots = ComponentSlots::new(&limits(1, Some(2)), Duration::ZERO);
        quiet().await;
        let first = admit(&app, &slots).await.unwrap();
        let second = admit(&app, &slots).await.unwrap();
        assert!(!first.1.extra && second.1.extra);
        assert!(
            admit(&app, &slots).await.is_err(),
            "a third waits, then is shed"
        );
        // A freed extra slot goes to a waiting request.
        let waiting = {
            let (app, slots) = (&app, &slots);
            async move { admit(app, slots).await }
        };
        let (third, ()) = tokio::join!(waiting, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(second);
        });
        assert!(third.unwrap().1.extra);
        drop(first);
    }

    #[tokio::test]
    async fn beside_another_components_request_only_the_base_slots() {
        let app = AppSlots::new(16);
        let slots = ComponentSlots::new(&limits(1, Some(2)), Duration::ZERO);
        let other = app.acquire(Duration::ZERO).await.unwrap();
        let first = admit(&app, &slots).await.unwrap();
        assert!(
            admit(&app, &slots).await.is_err(),
            "no extra slot while others run"
        );
        drop(other);
        let second = admit(&app, &slots).await.unwrap();
        assert!(second.1.extra, "alone again");
        drop(first);
    }

    #[tokio::test]
    async fn without_the_setting_the_limit_is_fixed_and_counts_come_back() {
        let app = AppSlots::new(16);
        let slots = ComponentSlots::new(&limits(1, None), Duration::ZERO);
        let first = admit(&app, &slots).await.unwrap();
        assert!(admit(&app, &slots).await.is_err());
        drop(first);
        // A shed or abandoned wait leaves no count behind.
        assert_eq!(slots.admitted.load(Ordering::Acquire), 0);
        assert_eq!(app.admitted(), 0);
        let abandoned = tokio::time::timeout(Duration::from_millis(10), async {
            let _held = admit(&app, &slots).await.unwrap();
            admit(&app, &slots).await
        })
        .await;
        assert!(abandoned.is_err());
        assert_eq!(slots.admitted.load(Ordering::Acquire), 0);
    }
}
