//! `kyb-deploy render`: the manifests a Kubernetes deployment would apply, which the
//! Kubernetes simulator admits as they are (a server-side dry run under strict field
//! validation), with secret values never printed.

use kyb_deploy_testkit::k8s_sim::K8sSimulator;

use crate::support::{Project, binary, output};

const CONFIG: &str = r#"
[image]
repository = "registry.test/kyb-api"

[environments.k8s]
target = "kubernetes"

[environments.k8s.kubernetes]
namespace = "kyb"
app = "kyb-api"

[environments.k8s.kubernetes.secrets]
DATABASE_URL = { env = "KYB_TEST_DATABASE_URL" }

[environments.k8s.kubernetes.ingress]
host = "api.example.com"
tls_secret = "api-tls"

[environments.k8s.env]
ENVIRONMENT = "k8s"
"#;

#[tokio::test]
async fn rendered_manifests_are_what_the_api_server_admits_and_hold_no_secret() {
    let project = Project::new(CONFIG);
    let run = output(
        binary(project.path())
            .args(["render", "-e", "k8s", "-v", "v1.2.3"])
            .env("KYB_TEST_DATABASE_URL", "postgres://u:hunter2@db"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(run.stdout.contains("<redacted>"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("\"image\": \"registry.test/kyb-api:v1.2.3\""),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("\n}\n{\n").count(), 10, "{}", run.stdout);

    // kubectl applies the stream, as a dry run on the server (strict validation).
    let sim = K8sSimulator::builder()
        .token("render-test")
        .build()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let kubeconfig = project.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifests = project.path().join("rendered.yaml");
    std::fs::write(&manifests, &run.stdout).unwrap();
    // A dry run creates no namespace, on a real server too: the namespace exists first.
    let namespace = project.path().join("namespace.json");
    std::fs::write(
        &namespace,
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kyb"}}"#,
    )
    .unwrap();
    let dir = project.path().to_path_buf();
    let (namespace, file) = (
        namespace.to_str().unwrap().to_owned(),
        manifests.to_str().unwrap().to_owned(),
    );
    let applied = tokio::task::spawn_blocking(move || {
        let kubectl = |args: &[&str]| {
            std::process::Command::new("kubectl")
                .args(args)
                .env("KUBECONFIG", dir.join("kubeconfig"))
                .env("HOME", &dir)
                .output()
                .expect("kubectl runs (scripts/test.sh installs it)")
        };
        assert!(kubectl(&["apply", "-f", &namespace]).status.success());
        kubectl(&["apply", "--server-side", "--dry-run=server", "-f", &file])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert!(
        applied.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(
        stdout.contains("deployment.apps/kyb-api serverside-applied (server dry run)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ingress.networking.k8s.io/kyb-api serverside-applied"),
        "{stdout}"
    );
}

#[test]
fn a_target_kind_without_manifests_says_so_with_2() {
    let project = Project::new(
        "[environments.dev]\ntarget = \"docker\"\n[environments.dev.docker]\ncontainer = \"c\"\nport = 8080\n",
    );
    let run = output(binary(project.path()).args(["render", "-e", "dev", "-v", "v1"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("environment dev's target kind \"docker\" has no manifests to render"),
        "{}",
        run.stderr
    );
}

#[test]
fn ones_own_manifests_are_rendered_filled_in_and_checked_with_their_place() {
    let project = Project::new(
        "[image]\nrepository = \"registry.test/kyb-api\"\n[environments.k8s]\ntarget = \"kubernetes\"\n\
         [environments.k8s.kubernetes]\nnamespace = \"kyb\"\napp = \"kyb-api\"\nmanifests = \"k8s\"\n",
    );
    let dir = project.path().join("k8s");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kyb-api}\nspec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: kyb-api, image: x}]}\n",
    )
    .unwrap();
    let run = output(binary(project.path()).args(["render", "-e", "k8s", "-v", "v9"]));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("\"image\": \"registry.test/kyb-api:v9\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\"app\": \"api\""), "{}", run.stdout);

    std::fs::write(
        dir.join("cron.yaml"),
        "# nightly\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n",
    )
    .unwrap();
    for args in [
        &["config", "validate"][..],
        &["render", "-e", "k8s", "-v", "v9"][..],
    ] {
        let run = output(binary(project.path()).args(args));
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "environments.k8s.kubernetes.manifests: {}:2:1: CronJob of apiVersion batch/v1 is not a kind kyb-deploy applies",
                dir.join("cron.yaml").display()
            )),
            "{args:?}: {}",
            run.stderr
        );
    }
}
