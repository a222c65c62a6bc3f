//! The [`Notifier`] seam and the webhook notifier (Slack-compatible).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::outcome::Outcome;

/// What a notification says about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// One-line human summary; sent as Slack's `text`.
    pub text: String,
    /// The project (service) name.
    pub project: String,
    /// Environment name.
    pub environment: String,
    /// The version deployed.
    pub version: String,
    /// Who ran it.
    pub actor: String,
    /// The run's record id.
    pub run_id: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Tells people about runs. A failing notifier only warns; it never fails a deployment.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// A name safe to show (no secrets), for warnings.
    fn name(&self) -> String;

    /// Delivers `notification`, retrying as the notifier sees fit.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// Posts notifications as JSON to a webhook (Slack incoming webhooks and anything that
/// accepts a JSON body with a `text` field), retrying with exponential backoff.
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    url: url::Url,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
}

impl WebhookNotifier {
    /// A notifier posting to `url`, trying `attempts` times with `timeout` per attempt.
    pub fn new(url: &str, attempts: u32, timeout: Duration) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| Error::Config {
            message: format!("notify.webhooks: {:?} is not a URL ({e})", redact(url)),
        })?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("kyb-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Http {
                what: "creating the webhook client".into(),
                source,
            })?;
        Ok(Self {
            url: parsed,
            client,
            attempts: attempts.max(1),
            backoff: Duration::from_millis(250),
        })
    }

    /// Sets the first retry delay (doubled after each failed attempt).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Webhook URLs carry their secret in the path or query; show scheme and host only.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> String {
        format!("webhook {}", redact(self.url.as_str()))
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match self
                .client
                .post(self.url.clone())
                .json(notification)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(e) => last = self.describe_error(&e),
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(Error::seam(
            "notifier",
            format!(
                "{} failed after {} attempts: {last}",
                self.name(),
                self.attempts
            ),
        ))
    }
}

impl WebhookNotifier {
    /// reqwest errors print the URL, which holds the webhook's secret: show it redacted.
    fn describe_error(&self, error: &reqwest::Error) -> String {
        let text = error
            .to_string()
            .replace(self.url.as_str(), &redact(self.url.as_str()));
        if error.is_timeout() {
            format!("timed out ({text})")
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_show_the_secret_part() {
        let n = WebhookNotifier::new(
            "https://hooks.example.com/services/T000/SECRET",
            1,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(n.name(), "webhook https://hooks.example.com/…");
        let err = WebhookNotifier::new("not a url/SECRET", 1, Duration::from_secs(1)).unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
