//! The ServiceAccount controller's part a deployment tool sees: every namespace has a
//! `default` ServiceAccount, made when the namespace is and remade if deleted.

use serde_json::json;

use super::ctx::Ctx;
use crate::k8s_sim::resources::kind;

/// Gives every namespace that is not being deleted its `default` ServiceAccount.
pub(super) fn sync_all(ctx: &mut Ctx<'_>) {
    for namespace in ctx.all(kind("Namespace")) {
        if !namespace["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let Some(name) = namespace["metadata"]["name"].as_str() else {
            continue;
        };
        let has_default = ctx
            .in_namespace(kind("ServiceAccount"), name)
            .iter()
            .any(|sa| sa["metadata"]["name"] == "default");
        if !has_default {
            let account = json!({"metadata": {"name": "default", "namespace": name}});
            ctx.create(kind("ServiceAccount"), name, account);
        }
    }
}
