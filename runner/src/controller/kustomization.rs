//! Kustomization reconciler (issue 6): build the source revision's path, server-side apply
//! with field manager `kustomize-controller`, inventory, prune, health. Being written.

use proto::flux::kustomize::Kustomization;

use super::{Error, Failure, Outcome};
use crate::context::Context;

/// Reconciles one Kustomization and writes its status.
pub async fn reconcile(_ctx: &Context, _obj: &Kustomization) -> Result<Outcome, Error> {
    Ok(Outcome::NotReady(Failure::stalled(
        "NotImplemented",
        "the Kustomization reconciler is not implemented yet",
    )))
}
