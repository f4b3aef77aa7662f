//! What one instance holds of the provider's keys, and when it asks for
//! fresh ones: within the request that needs them, since Lambda freezes
//! the process after the answer (spec §6, §7).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::auth::keys::KeySet;
use crate::auth::provider::cache::{believable_until, CachedKeySet, SharedKeyCache};
use crate::auth::provider::discovery::{fetch_key_set, lifetime, KeyLocation};
use crate::auth::provider::fetch::Fetcher;
use crate::clock::{millis, unix_millis as now_ms};
use crate::deadline::Deadline;
use crate::telemetry::KeyRefreshRecord;

/// How long a request whose keys are past their lifetime waits for fresh
/// ones: a healthy provider answers its two documents well within it, and
/// the rest of the request keeps at least the DynamoDB calls' worst case.
pub const REFRESH_SLICE: Duration = Duration::from_secs(1);
/// How long past its lifetime a key set that cannot be refreshed still serves.
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);

/// How often one instance may ask the provider once keys are held, while
/// none has ever been, and the shared cache: tokens with made-up `kid`s
/// cost at most one of each per gap.
pub const REFETCH_GAP: Duration = Duration::from_secs(30);
pub const RETRY_GAP: Duration = Duration::from_secs(1);
pub const SHARED_READ_GAP: Duration = Duration::from_secs(5);

/// No usable key set for a request; the cause is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeysUnavailable(pub String);

/// Who waits for a refresh, and so how it may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    /// A request whose set is past its lifetime: running out of its slice
    /// is no failure, as the set still verifies.
    Slice,
    /// A request that cannot verify without fresh keys.
    Request,
}

/// How a request's refresh ended: whatever it brought (fresh keys, a
/// recorded failure, nothing as the gaps forbade asking) is in the state;
/// only running out of time is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    InTime,
    OutOfTime,
}

/// What this instance holds.
#[derive(Default, Clone)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When the provider served the set, and until when it is fresh (Unix ms).
    fetched_at_ms: u64,
    fresh_until_ms: u64,
    last_fetch: Option<Instant>,
    last_shared_read: Option<Instant>,
    /// Why the last fetch a request made failed, until one succeeds.
    last_error: Option<String>,
}

impl State {
    fn knows(&self, kid: Option<&str>) -> bool {
        self.keys.as_ref().is_some_and(|keys| kid.is_none_or(|kid| keys.has_kid(kid)))
    }

    fn fresh(&self, kid: Option<&str>, now_ms: u64) -> Option<Arc<KeySet>> {
        (now_ms < self.fresh_until_ms && self.knows(kid)).then(|| self.keys.clone()).flatten()
    }

    /// The set while fresh, or past its lifetime by less than [`MAX_STALE`].
    fn servable(&self, now_ms: u64) -> Option<Arc<KeySet>> {
        let limit = self.fresh_until_ms.saturating_add(millis(MAX_STALE));
        (now_ms < limit).then(|| self.keys.clone()).flatten()
    }

    /// How far past its lifetime the set is at `now_ms` (zero while fresh);
    /// with no set at all, the whole stale limit: JWTs already fail.
    fn stale_for(&self, now_ms: u64) -> Duration {
        match self.keys {
            Some(_) => Duration::from_millis(now_ms.saturating_sub(self.fresh_until_ms)),
            None => MAX_STALE,
        }
    }

    fn may_fetch(&self, now: Instant) -> bool {
        let gap = if self.keys.is_some() { REFETCH_GAP } else { RETRY_GAP };
        self.last_fetch.is_none_or(|at| now.saturating_duration_since(at) >= gap)
    }

    fn may_read_shared(&self, now: Instant) -> bool {
        self.last_shared_read.is_none_or(|at| now.saturating_duration_since(at) >= SHARED_READ_GAP)
    }

    /// Why a request gets no usable key set.
    fn unavailable(&self, now_ms: u64, ended: Ended) -> KeysUnavailable {
        let why = match (&self.last_error, ended) {
            (_, Ended::OutOfTime) => "a refresh already under way did not end before the request's deadline",
            (Some(error), _) => error.as_str(),
            (None, _) => "no key set has been fetched yet",
        };
        KeysUnavailable(match &self.keys {
            None => format!("no key set from the identity provider: {why}"),
            Some(_) if self.servable(now_ms).is_none() => {
                format!("the identity provider's keys expired over 24 h ago and cannot be refreshed: {why}")
            }
            Some(_) => format!("the token's key is not in the key set held, which cannot be refreshed: {why}"),
        })
    }
}

pub struct ProviderKeys<C> {
    location: KeyLocation,
    cache_key: String,
    fetcher: Fetcher,
    shared: Option<Arc<C>>,
    state: RwLock<State>,
    /// Held by whoever refreshes: one refresh at a time.
    refresh: Arc<tokio::sync::Mutex<()>>,
}

impl<C: SharedKeyCache> ProviderKeys<C> {
    pub fn new(location: KeyLocation, shared: Option<Arc<C>>, fetcher: Fetcher) -> Self {
        ProviderKeys {
            cache_key: location.cache_key(),
            location,
            fetcher,
            shared,
            state: RwLock::default(),
            refresh: Arc::default(),
        }
    }

    /// Whether [`ProviderKeys::warm_up`] reads the shared cache.
    pub fn shares(&self) -> bool {
        self.shared.is_some()
    }

    fn snapshot(&self) -> State {
        self.state.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.write().unwrap_or_else(PoisonError::into_inner));
    }

    /// At init, which never waits for the provider: the shared cache's
    /// entry, read now; when it is missing, unusable or stale, a fetch from
    /// the provider that nothing waits for. A freeze may cut that fetch, so
    /// its failure is no failure and does not count as a fetch: the next
    /// request that needs fresh keys fetches them.
    pub async fn warm_up(self: &Arc<Self>) {
        self.adopt_shared(&Deadline::Unknown).await;
        if self.snapshot().fresh(None, now_ms()).is_some() {
            return;
        }
        let Ok(guard) = self.refresh.clone().try_lock_owned() else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            match fetch_key_set(&this.fetcher, &this.location, &Deadline::Unknown).await {
                Ok((keys, entry)) => this.keep(keys, &entry, &Deadline::Unknown).await,
                Err(err) => tracing::debug!(error = %err, "the key fetch init started did not finish"),
            }
        });
    }

    /// The key set to verify a token naming `kid` with, within `deadline`.
    pub async fn current(&self, kid: Option<&str>, deadline: &Deadline) -> Result<Arc<KeySet>, KeysUnavailable> {
        let state = self.snapshot();
        if let Some(keys) = state.fresh(kid, now_ms()) {
            return Ok(keys);
        }
        // Past its lifetime but still servable, and holding this key: a
        // slice of the request's time for fresh keys, then the set held. A
        // fresh set that dropped the key refuses the token (it was revoked);
        // only a refresh that did not end in time leaves this set serving.
        if let Some(stale) = state.servable(now_ms()).filter(|_| state.knows(kid)) {
            let ended = self.refresh(kid, Waiter::Slice, &deadline.sooner(REFRESH_SLICE)).await;
            let state = self.snapshot();
            if ended == Ended::OutOfTime && state.fresh(None, now_ms()).is_none() {
                KeyRefreshRecord::OutOfTime { stale_for: state.stale_for(now_ms()) }.log();
            }
            return Ok(state.servable(now_ms()).unwrap_or(stale));
        }
        // A key not held, or nothing servable: all the request's time.
        let ended = self.refresh(kid, Waiter::Request, deadline).await;
        let state = self.snapshot();
        match state.servable(now_ms()) {
            // The token's key, or a set fetched without error that lacks it
            // (the token then fails verification: 401).
            Some(keys) if state.knows(kid) || (ended != Ended::OutOfTime && state.last_error.is_none()) => Ok(keys),
            _ => Err(state.unavailable(now_ms(), ended)),
        }
    }

    /// One refresh at a time, within `deadline`: the shared cache first
    /// (another instance may have fetched the set already), at most once
    /// per gap, then the provider, at most once per gap; what the provider
    /// gives goes to the shared cache.
    async fn refresh(&self, kid: Option<&str>, waiter: Waiter, deadline: &Deadline) -> Ended {
        let Some(_guard) = deadline.wait(self.refresh.lock()).await else { return Ended::OutOfTime };
        // Whoever held the lock before may have brought what is needed.
        if self.snapshot().fresh(kid, now_ms()).is_some() {
            return Ended::InTime;
        }
        let now = Instant::now();
        if self.shared.is_some() && self.snapshot().may_read_shared(now) {
            self.update(|s| s.last_shared_read = Some(now));
            self.adopt_shared(deadline).await;
            if self.snapshot().fresh(kid, now_ms()).is_some() {
                return Ended::InTime;
            }
        }
        if !self.snapshot().may_fetch(now) {
            return Ended::InTime;
        }
        self.update(|s| s.last_fetch = Some(now));
        match fetch_key_set(&self.fetcher, &self.location, deadline).await {
            Ok((keys, entry)) => {
                self.keep(keys, &entry, deadline).await;
                Ended::InTime
            }
            Err(err) if waiter == Waiter::Slice && err.is_out_of_time() => Ended::OutOfTime,
            Err(err) => {
                let error = err.to_string();
                let stale_for = self.snapshot().stale_for(now_ms());
                KeyRefreshRecord::Failed { error: &error, configuration: err.is_configuration(), stale_for }.log();
                self.update(|s| s.last_error = Some(error));
                Ended::InTime
            }
        }
    }

    /// Holds a set just fetched from the provider, and offers it to the
    /// shared cache.
    async fn keep(&self, keys: KeySet, entry: &CachedKeySet, deadline: &Deadline) {
        self.install(Arc::new(keys), entry);
        if let Some(shared) = &self.shared {
            match shared.store(&self.cache_key, entry, deadline).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!("the shared key cache already holds a newer set"),
                Err(err) => tracing::warn!(error = %err, "writing the shared key cache failed"),
            }
        }
    }

    /// Takes the shared cache's set when it is usable and newer than ours.
    async fn adopt_shared(&self, deadline: &Deadline) {
        let Some(shared) = &self.shared else { return };
        let entry = match shared.load(&self.cache_key, deadline).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return,
            Err(err) => return tracing::warn!(error = %err, "reading the shared key cache failed"),
        };
        if entry.fetched_at_ms <= self.snapshot().fetched_at_ms {
            return;
        }
        if entry.fetched_at_ms > believable_until(now_ms()) {
            return tracing::warn!("ignored the shared key cache's entry: fetched in the future");
        }
        match KeySet::parse(entry.document.as_bytes()) {
            Ok(keys) => self.install(Arc::new(keys), &entry),
            Err(err) => tracing::warn!(error = %err, "ignored the shared key cache's entry: not a usable key set"),
        }
    }

    fn install(&self, keys: Arc<KeySet>, entry: &CachedKeySet) {
        let lifetime = lifetime(Some(Duration::from_secs(entry.max_age_secs)));
        self.update(|s| {
            s.keys = Some(keys);
            s.fetched_at_ms = entry.fetched_at_ms;
            s.fresh_until_ms = entry.fetched_at_ms.saturating_add(millis(lifetime));
            s.last_error = None;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = r#"{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;

    fn held() -> Option<Arc<KeySet>> {
        Some(Arc::new(KeySet::parse(format!(r#"{{"keys":[{RSA}]}}"#).as_bytes()).unwrap()))
    }

    #[test]
    fn stale_keys_serve_for_a_day_at_most() {
        let state = State { keys: held(), fetched_at_ms: 1_000, fresh_until_ms: 5_000, ..State::default() };
        assert!(state.fresh(Some("r"), 4_999).is_some());
        assert!(state.fresh(Some("r"), 5_000).is_none());
        assert!(state.fresh(Some("other"), 4_999).is_none(), "a key it does not hold is not fresh");
        assert!(state.servable(5_000 + millis(MAX_STALE) - 1).is_some());
        assert!(state.servable(5_000 + millis(MAX_STALE)).is_none());
        let far = State { fresh_until_ms: u64::MAX, ..state };
        assert!(far.servable(u64::MAX - 1).is_some(), "no overflow");
    }

    #[test]
    fn gaps_are_judged_on_the_time_given() {
        let (t0, ms) = (Instant::now(), Duration::from_millis(1));
        let never = State::default();
        assert!(never.may_fetch(t0) && never.may_read_shared(t0));
        let tried = State { last_fetch: Some(t0), last_shared_read: Some(t0), ..State::default() };
        assert!(!tried.may_fetch(t0 + RETRY_GAP - ms));
        assert!(tried.may_fetch(t0 + RETRY_GAP), "no keys yet: the short retry gap");
        let holding = State { keys: held(), ..tried.clone() };
        assert!(!holding.may_fetch(t0 + REFETCH_GAP - ms), "keys held: the refetch gap");
        assert!(holding.may_fetch(t0 + REFETCH_GAP));
        assert!(!tried.may_read_shared(t0 + SHARED_READ_GAP - ms));
        assert!(tried.may_read_shared(t0 + SHARED_READ_GAP));
    }

    #[test]
    fn staleness_is_zero_while_fresh_and_the_whole_limit_without_keys() {
        let holding = State { keys: held(), fresh_until_ms: 10_000, ..State::default() };
        assert_eq!(holding.stale_for(9_000), Duration::ZERO);
        assert_eq!(holding.stale_for(70_000), Duration::from_secs(60));
        assert_eq!(State::default().stale_for(70_000), MAX_STALE);
    }
}
