//! kube-rs against the simulator: a typed Api for every served resource, the runtime's
//! watcher (across injected disconnects), and server-side apply with field managers.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Resource};
use kyb_deploy_testkit::k8s_sim::{Fault, K8sSimulator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Cluster, PATIENCE};

pub(super) async fn client(c: &Cluster) -> Client {
    let text = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Creates, reads, lists by label, patches and deletes one object of type `K` built from
/// `body` (which needs `metadata.name`), through the typed `api`.
async fn round_trip<K>(api: Api<K>, body: Value)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let mut body = body;
    body["apiVersion"] = json!(K::api_version(&()));
    body["kind"] = json!(K::kind(&()));
    body["metadata"]["labels"] = json!({"suite": "kube"});
    let object: K = serde_json::from_value(body).unwrap();
    let name = object.meta().name.clone().unwrap();
    let kind = K::kind(&());
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
    assert!(created.meta().uid.is_some(), "{kind}");
    let fetched = api
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("get {kind}: {e}"));
    assert_eq!(fetched.meta().name.as_deref(), Some(name.as_str()));
    let listed = api
        .list(&ListParams::default().labels("suite=kube"))
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"));
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.meta().name.as_deref() == Some(name.as_str())),
        "{kind}"
    );
    let patched = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"checked": "yes"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch {kind}: {e}"));
    assert_eq!(
        patched.meta().annotations.as_ref().unwrap()["checked"],
        "yes"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {kind}: {e}"));
    let gone = api.get_opt(&name).await.unwrap();
    assert!(gone.is_none(), "{kind} deleted");
}

#[tokio::test]
async fn a_typed_api_works_for_every_served_resource() {
    let c = Cluster::default().await;
    let client = client(&c).await;
    let template = json!({
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "app", "image": "reg/app:v1"}]}
    });
    round_trip::<Namespace>(
        Api::all(client.clone()),
        json!({"metadata": {"name": "kube-suite"}}),
    )
    .await;
    round_trip::<Pod>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "p"}, "spec": template["spec"]}),
    )
    .await;
    round_trip::<Service>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]}})).await;
    round_trip::<ConfigMap>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}),
    )
    .await;
    round_trip::<Secret>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "sec"}, "stringData": {"k": "v"}}),
    )
    .await;
    round_trip::<ServiceAccount>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "sa"}}),
    )
    .await;
    round_trip::<Event>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "ev"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Test", "message": "m"})).await;
    round_trip::<Deployment>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "d"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": template}})).await;
    round_trip::<ReplicaSet>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "rs"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": template}})).await;
    round_trip::<Ingress>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "ing"}, "spec": {"rules": [{"host": "kyb.test"}]}}),
    )
    .await;
    round_trip::<NetworkPolicy>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "np"}, "spec": {"podSelector": {}}}),
    )
    .await;
    round_trip::<HorizontalPodAutoscaler>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "hpa"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "minReplicas": 1, "maxReplicas": 3}})).await;
    round_trip::<Role>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})).await;
    round_trip::<RoleBinding>(Api::namespaced(client.clone(), "default"), json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]})).await;
    round_trip::<Lease>(
        Api::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}),
    )
    .await;
}

#[tokio::test]
async fn the_watcher_sees_changes_and_survives_disconnects() {
    let c = Cluster::start(
        K8sSimulator::builder()
            .time_scale(20.0)
            .seed(2)
            .fault(Fault::watch_disconnect_after(Duration::from_millis(300))),
    )
    .await;
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let writer = tokio::spawn({
        let api = api.clone();
        async move {
            for i in 0..6 {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": format!("w{i}")}})).unwrap();
                api.create(&PostParams::default(), &cm).await.unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });
    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.len() < 6 {
            match events.try_next().await {
                Ok(Some(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                    seen.insert(cm.metadata.name.unwrap());
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("the watcher ended"),
                // A cut connection surfaces as an error; the watcher then resumes.
                Err(_) => {}
            }
        }
    })
    .await
    .expect("every created ConfigMap was seen");
    writer.await.unwrap();
}

#[tokio::test]
async fn server_side_apply_records_managers_and_conflicts_unless_forced() {
    let c = Cluster::default().await;
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let applied = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": value}});
    let first = api
        .patch(
            "ssa",
            &PatchParams::apply("team-a"),
            &Patch::Apply(applied("a")),
        )
        .await
        .unwrap();
    let managers: Vec<String> = first
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| format!("{}:{}", m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert_eq!(managers, ["team-a:Apply"]);

    let conflict = api
        .patch(
            "ssa",
            &PatchParams::apply("team-b"),
            &Patch::Apply(applied("b")),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = conflict else {
        panic!("{conflict:?}");
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.contains("conflict with \"team-a\""),
        "{}",
        status.message
    );
    assert!(status.message.contains(".data.k"), "{}", status.message);

    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("team-b").force(),
            &Patch::Apply(applied("b")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "b");
    let owners: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(owners, ["team-b"], "ownership moved");
}
