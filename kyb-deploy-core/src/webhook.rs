//! [`WebhookNotifier`], the default [`Notifier`](crate::Notifier): notifications posted to a
//! webhook (Slack-compatible), retried within a budget.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::notifier::{Notification, Notifier};
use crate::redact::{redact_text, redact_url};

/// Posts notifications as JSON to a webhook (Slack incoming webhooks and anything that
/// accepts a JSON body with a `text` field), retrying with exponential backoff.
///
/// Every attempt and every pause between attempts fit in one budget
/// ([`with_budget`](Self::with_budget), 30 s by default), so an unreachable webhook delays
/// the end of a run by at most that much, whatever the attempts. The webhook's URL is a
/// secret: it is never sent on as a `Referer`, redirects are followed only within its own
/// scheme, host and port, and names and errors show only its scheme and host.
///
/// ```
/// use std::time::Duration;
///
/// use kyb_deploy_core::{Notifier, WebhookNotifier};
///
/// let notifier = WebhookNotifier::new(
///     "https://hooks.example.com/services/T000/SECRET",
///     3,
///     Duration::from_secs(10),
/// )
/// .unwrap()
/// .with_budget(Duration::from_secs(30));
/// assert_eq!(notifier.name(), "webhook https://hooks.example.com/…");
/// ```
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    url: url::Url,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    budget: Duration,
}

impl WebhookNotifier {
    /// The most attempts a notifier makes (`notify.attempts`).
    pub const MAX_ATTEMPTS: u32 = 10;

    /// The time all attempts of one notification share unless
    /// [`with_budget`](Self::with_budget) says otherwise (`notify.budget`).
    pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

    /// How many redirects within the webhook's origin are followed.
    const MAX_REDIRECTS: usize = 5;

    /// A notifier posting to `url`, trying `attempts` times (1 to [`Self::MAX_ATTEMPTS`]; 0
    /// counts as 1) with `timeout` per attempt.
    pub fn new(url: &str, attempts: u32, timeout: Duration) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| Error::Config {
            // The text is not shown: an unparseable webhook URL still holds its secret.
            message: format!("notify.webhooks: an entry is not a URL ({e})"),
        })?;
        if attempts > Self::MAX_ATTEMPTS {
            return Err(Error::Config {
                message: format!(
                    "notify.attempts: {attempts} is more than the limit of {}",
                    Self::MAX_ATTEMPTS
                ),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("kyb-deploy/", env!("CARGO_PKG_VERSION")))
            // The URL's path and query are the webhook's secret: never repeat them to the
            // next hop, and never follow the body to a host the user did not name.
            .referer(false)
            .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
            .build()
            .map_err(|source| Error::Http {
                what: "creating the webhook client".into(),
                source: source.into(),
            })?;
        Ok(Self {
            url: parsed,
            client,
            attempts: attempts.max(1),
            backoff: Duration::from_millis(250),
            budget: Self::DEFAULT_BUDGET,
        })
    }

    /// Sets the first retry delay (doubled after each failed attempt).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the time that all attempts of one notification, and the pauses between them,
    /// share; no attempt starts or runs past it.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }
}

/// Follows a redirect only to the origin (scheme, host and port) of the first URL, and at
/// most [`WebhookNotifier::MAX_REDIRECTS`] times.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let origin = attempt.previous().first().map(url::Url::origin);
    if origin.as_ref() != Some(&attempt.url().origin()) {
        let message = format!(
            "refused to follow a redirect to another host, {} (a webhook is only redirected \
             within its own scheme, host and port)",
            origin_only(attempt.url())
        );
        attempt.error(message)
    } else if attempt.previous().len() > WebhookNotifier::MAX_REDIRECTS {
        let message = format!(
            "refused to follow more than {} redirects",
            WebhookNotifier::MAX_REDIRECTS
        );
        attempt.error(message)
    } else {
        attempt.follow()
    }
}

/// Scheme, host and port of a webhook URL, redacted: its path and query are its secret.
fn origin_only(url: &url::Url) -> String {
    let mut origin = url.clone();
    origin.set_path("");
    origin.set_query(None);
    origin.set_fragment(None);
    format!("{}…", redact_url(&origin))
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> String {
        format!("webhook {}", origin_only(&self.url))
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        let start = Instant::now();
        // A budget too large for the clock is no limit at all.
        let deadline = start
            .checked_add(self.budget)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        let mut delay = self.backoff;
        let mut last = "no attempt fit in the budget".to_owned();
        let mut made = 0;
        while made < self.attempts && Instant::now() < deadline {
            made += 1;
            let send = self.client.post(self.url.clone()).json(notification).send();
            match tokio::time::timeout_at(deadline, send).await {
                Ok(Ok(response)) if response.status().is_success() => return Ok(()),
                Ok(Ok(response)) => last = format!("HTTP {}", response.status()),
                // A redirect refused now is refused on every attempt.
                Ok(Err(e)) if e.is_redirect() => {
                    last = self.describe_error(&e);
                    break;
                }
                Ok(Err(e)) => last = self.describe_error(&e),
                Err(_) => {
                    last = format!("attempt {made} was still waiting when the budget ran out");
                    break;
                }
            }
            // A pause that would reach the end of the budget leaves no time to try again.
            let pause_ends = Instant::now().checked_add(delay);
            if made < self.attempts && pause_ends.is_some_and(|end| end < deadline) {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            } else {
                break;
            }
        }
        Err(Error::seam(
            "notifier",
            format!(
                "{} gave up after {made} attempt{} within its budget of {} (notify.budget): \
                 {last}",
                self.name(),
                if made == 1 { "" } else { "s" },
                humantime::format_duration(self.budget),
            ),
        ))
    }
}

impl WebhookNotifier {
    /// What went wrong with an attempt, with its causes. reqwest errors print the URL, which
    /// holds the webhook's secret: only its origin is shown, and the peer's words pass
    /// [`redact_text`].
    fn describe_error(&self, error: &reqwest::Error) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        for url in error.url().into_iter().chain([&self.url]) {
            text = text.replace(url.as_str(), &origin_only(url));
        }
        let text = redact_text(&text);
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
        let n = WebhookNotifier::new(
            "http://ci:hunter2@127.0.0.1:8080/hooks/SECRET?token=abc",
            1,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            n.name(),
            "webhook http://redacted:redacted@127.0.0.1:8080/…"
        );
    }

    #[test]
    fn attempts_past_the_limit_are_refused_naming_the_key() {
        let err = WebhookNotifier::new("https://hooks.example.com/x", 11, Duration::from_secs(1))
            .unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains("notify.attempts"), "{err}");
        assert!(
            WebhookNotifier::new("https://hooks.example.com/x", 10, Duration::from_secs(1)).is_ok()
        );
    }
}
