//! The provider's resource types, one file each, and what they share.
//!
//! Owns: the registry ([`all`]), the field manager name, Go duration parsing, the wait loop that
//! honours StopProvider ([`wait_until`]), the shared Kubernetes helpers every resource uses
//! ([`connect`], [`kube_error`] naming the host and cause, [`interrupted`]), and the "not
//! implemented yet" answer of resources whose behaviour is issue 4
//! (their schemas are complete; their create/update/import say so plainly instead of pretending).

use std::sync::Arc;
use std::time::Duration;

use crate::framework::{Ctx, Diags, Resource, error};

pub mod alert;
pub mod installation;
pub mod kustomization;
pub mod receiver;

/// Server-side apply field manager of every object the provider writes.
pub const FIELD_MANAGER: &str = "terraform-provider-flux";

/// Every resource type the provider serves.
pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(installation::Installation::new()),
        Arc::new(kustomization::Kustomization::new()),
        Arc::new(receiver::Receiver::new()),
        Arc::new(alert::Alert::new()),
    ]
}

/// Parses a Go duration (`1h30m`, `500ms`, `1.5h`), the syntax Flux uses for intervals and timeouts.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return None;
        };
        total += n * unit;
        rest = &rest[len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Why a wait ended without success.
#[derive(Debug, PartialEq)]
pub enum WaitEnd {
    /// The time ran out.
    TimedOut,
    /// Terraform asked the provider to stop (Ctrl-C).
    Stopped,
}

/// Polls `check` every `every` until it returns `Some`, the timeout passes or the provider is
/// stopped. Errors from `check` end the wait at once.
pub async fn wait_until<T, E, F, Fut>(
    ctx: &Ctx,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<Result<T, WaitEnd>, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if *ctx.stop.borrow() {
            return Ok(Err(WaitEnd::Stopped));
        }
        if let Some(v) = check().await? {
            return Ok(Ok(v));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(Err(WaitEnd::TimedOut));
        }
        let nap = every.min(deadline - now);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = ctx.stopped() => return Ok(Err(WaitEnd::Stopped)),
        }
    }
}

/// "Interrupted while …": the answer when StopProvider cut an operation short.
pub fn interrupted(what: &str) -> Diags {
    vec![error(
        format!("Interrupted while {what}"),
        "Terraform asked the provider to stop; the request was abandoned and may or may not have reached the cluster. The next plan reads the object back.",
    )]
}

/// A Kubernetes API error as a diagnostic naming the host, what we were doing, and the cause (the
/// API's own message, or the transport error with its sources, e.g. "Connection refused").
pub fn kube_error(host: &str, what: &str, e: kube::Error) -> Diags {
    let cause = match &e {
        // The API's own words, without the Debug dump of the whole Status.
        kube::Error::Api(s) => format!("{} (HTTP {} {})", s.message, s.code, s.reason),
        // Transport errors hide the useful part (e.g. "Connection refused") in their sources.
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let part = s.to_string();
                if !text.contains(&part) {
                    text = format!("{text}: {part}");
                }
                source = s.source();
            }
            text
        }
    };
    vec![error(
        format!("Kubernetes API error while {what}"),
        format!("Kubernetes API at {host}: {cause}"),
    )]
}

/// The provider's Kubernetes connection, or a diagnostic saying why there is none.
pub async fn connect(ctx: &Ctx) -> Result<crate::config::Connection, Diags> {
    ctx.kube
        .connect()
        .await
        .map_err(|e| vec![error("Cannot reach the Kubernetes API", e.to_string())])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_go_forms() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[tokio::test]
    async fn wait_until_stops_when_provider_is_stopped() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let ctx = Ctx {
            kube: Arc::new(crate::config::KubeAccess::default()),
            stop: rx,
        };
        let started = std::time::Instant::now();
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = tx.send(true);
            tx
        });
        let r: Result<Result<(), WaitEnd>, ()> = wait_until(
            &ctx,
            Duration::from_secs(30),
            Duration::from_secs(5),
            || async { Ok(None) },
        )
        .await;
        assert_eq!(r, Ok(Err(WaitEnd::Stopped)));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(stopper.await);
    }

    #[tokio::test]
    async fn wait_until_times_out_and_succeeds() {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let ctx = Ctx {
            kube: Arc::new(crate::config::KubeAccess::default()),
            stop: rx,
        };
        let r: Result<Result<(), WaitEnd>, ()> = wait_until(
            &ctx,
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Ok(None) },
        )
        .await;
        assert_eq!(r, Ok(Err(WaitEnd::TimedOut)));
        let mut n = 0;
        let r: Result<Result<i32, WaitEnd>, ()> = wait_until(
            &ctx,
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let v = n;
                async move { Ok((v >= 3).then_some(v)) }
            },
        )
        .await;
        assert_eq!(r, Ok(Ok(3)));
    }
}
