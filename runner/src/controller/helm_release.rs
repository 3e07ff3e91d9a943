//! HelmRelease reconciler (issue 7): chart from a GitRepository, values, install/upgrade with
//! release Secrets Helm can read, remediation, uninstall. Being written.

use proto::flux::helm::HelmRelease;

use super::{Error, Failure, Outcome};
use crate::context::Context;

/// Reconciles one HelmRelease and writes its status.
pub async fn reconcile(_ctx: &Context, _obj: &HelmRelease) -> Result<Outcome, Error> {
    Ok(Outcome::NotReady(Failure::stalled(
        "NotImplemented",
        "the HelmRelease reconciler is not implemented yet",
    )))
}
