//! The webhook notifier against real HTTP servers: retries, its budget, redirects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
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
        ci_run_url: Some("https://github.com/acme/api/actions/runs/42".into()),
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
    assert_eq!(
        body["ci_run_url"], "https://github.com/acme/api/actions/runs/42",
        "the CI run travels with the notification"
    );
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

/// A listener on a free port serving `app`; its `http://address`.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A 307 (the method and body follow it) to `location`.
fn temporary_redirect(location: &str) -> (StatusCode, [(&'static str, String); 1]) {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [("location", location.to_owned())],
    )
}

#[tokio::test]
async fn a_redirect_within_the_webhooks_host_is_followed_without_a_referer() {
    let referers = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let seen = referers.clone();
    let app = Router::new()
        .route(
            "/hooks/T000/SECRET",
            post(|| async { temporary_redirect("/hooks/moved/T000/SECRET") }),
        )
        .route(
            "/hooks/moved/T000/SECRET",
            post(move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let referer = headers
                        .get("referer")
                        .map(|v| v.to_str().unwrap_or("?").to_owned());
                    seen.lock().unwrap().push(referer);
                    StatusCode::OK
                }
            }),
        );
    let address = serve(app).await;
    let notifier = WebhookNotifier::new(
        &format!("{address}/hooks/T000/SECRET"),
        1,
        Duration::from_secs(5),
    )
    .unwrap();
    notifier.notify(&notification()).await.unwrap();
    assert_eq!(*referers.lock().unwrap(), vec![None]);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_never_reaches_it() {
    // Another port is another origin: the second listener stands for someone else's host.
    let stolen = Arc::new(AtomicU32::new(0));
    let count = stolen.clone();
    let other = serve(Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        }
    }))
    .await;
    let tried = Arc::new(AtomicU32::new(0));
    let count = tried.clone();
    let target = format!("{other}/collect/T000/SECRET?token=abc");
    let webhook = serve(Router::new().route(
        "/hooks/T000/SECRET",
        post(move || {
            let (count, target) = (count.clone(), target.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                temporary_redirect(&target)
            }
        }),
    ))
    .await;
    let notifier = WebhookNotifier::new(
        &format!("{webhook}/hooks/T000/SECRET"),
        3,
        Duration::from_secs(5),
    )
    .unwrap()
    .with_backoff(Duration::from_millis(10));
    let err = notifier
        .notify(&notification())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the other host got the body"
    );
    // Refused on the first attempt: a redirect that is refused once is refused every time.
    assert_eq!(tried.load(Ordering::SeqCst), 1, "{err}");
    assert!(
        err.contains("refused to follow a redirect to another host")
            && err.contains(&format!("{other}/…")),
        "{err}"
    );
    assert!(
        !err.contains("SECRET") && !err.contains("collect") && !err.contains("abc"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_stop_within_the_notification_budget() {
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    let address = serve(Router::new().route(
        "/hooks/T000/SECRET",
        post(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    ))
    .await;
    // 9 attempts with backoff from 100 ms would pause 51 s in all; the budget is 1 s.
    let notifier = WebhookNotifier::new(
        &format!("{address}/hooks/T000/SECRET"),
        9,
        Duration::from_secs(5),
    )
    .unwrap()
    .with_backoff(Duration::from_millis(100))
    .with_budget(Duration::from_secs(1));
    // A generous guard only so that a regression fails instead of hanging.
    let err = tokio::time::timeout(Duration::from_secs(30), notifier.notify(&notification()))
        .await
        .expect("the notifier ignored its budget")
        .unwrap_err()
        .to_string();
    let made = count.load(Ordering::SeqCst);
    assert!((2..9).contains(&made), "{made} attempts: {err}");
    assert!(
        err.contains(&format!(
            "gave up after {made} attempts within its budget of 1s (notify.budget)"
        )),
        "{err}"
    );
    assert!(err.contains("500"), "{err}");
}
