//! The webhook notifier against a real HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use kyb_deploy_core::{Notification, Notifier, Outcome, Release, Version, WebhookNotifier};

/// A webhook that fails the first `failures` deliveries with 503, then accepts; it counts
/// deliveries and keeps the last body.
async fn webhook(
    failures: u32,
) -> (
    String,
    Arc<AtomicU32>,
    Arc<std::sync::Mutex<Option<serde_json::Value>>>,
) {
    let count = Arc::new(AtomicU32::new(0));
    let body = Arc::new(std::sync::Mutex::new(None));
    let (c, b) = (count.clone(), body.clone());
    let app = Router::new().route(
        "/hooks/T000/SECRET",
        post(move |axum::Json(json): axum::Json<serde_json::Value>| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                *b.lock().unwrap() = Some(json);
                if n <= failures {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/T000/SECRET",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count, body)
}

fn notification() -> Notification {
    let version = Version::parse("v1.2.3").unwrap();
    Notification {
        text: "kyb-platform-api v1.2.3 → staging: deployed v1.2.3".into(),
        project: "kyb-platform-api".into(),
        environment: "staging".into(),
        version: "v1.2.3".into(),
        actor: "ci".into(),
        run_id: "run-1".into(),
        outcome: Outcome::Succeeded {
            release: Release::new(version, "repo@sha256:0"),
            dry_run: false,
        },
    }
}

#[tokio::test]
async fn retries_with_backoff_until_delivered() {
    let (url, count, body) = webhook(2).await;
    let notifier = WebhookNotifier::new(&url, 3, Duration::from_secs(5))
        .unwrap()
        .with_backoff(Duration::from_millis(10));
    notifier.notify(&notification()).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let body = body.lock().unwrap().clone().unwrap();
    assert_eq!(
        body["text"],
        "kyb-platform-api v1.2.3 → staging: deployed v1.2.3"
    );
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["outcome"]["outcome"], "succeeded");
}

#[tokio::test]
async fn gives_up_after_its_attempts_without_showing_the_secret() {
    let (url, count, _) = webhook(u32::MAX).await;
    let notifier = WebhookNotifier::new(&url, 2, Duration::from_secs(5))
        .unwrap()
        .with_backoff(Duration::from_millis(10));
    let err = notifier
        .notify(&notification())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(err.contains("503"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");

    // A webhook that cannot be reached: the transport error must not carry the URL either.
    let unreachable = WebhookNotifier::new(
        "http://127.0.0.1:9/hooks/T000/SECRET",
        1,
        Duration::from_secs(2),
    )
    .unwrap();
    let err = unreachable
        .notify(&notification())
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SECRET"), "{err}");
}
