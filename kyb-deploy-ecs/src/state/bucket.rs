//! S3 objects as the state backend uses them: reads, conditional writes settled by reading
//! back when their answer was lost, and listings.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use kyb_deploy_core::Error;

use crate::error::CallError;

/// Attempts of a conditional write that S3 refused with "409 ConditionalRequestConflict"
/// (another conditional write of the same key was in flight).
const CONFLICT_ATTEMPTS: u32 = 5;

/// An object's content and its ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) body: Vec<u8>,
    pub(crate) etag: String,
}

/// What a conditional write requires of the object before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Condition<'a> {
    /// It does not exist (`If-None-Match: *`).
    Absent,
    /// It has this ETag (`If-Match`).
    Matches(&'a str),
}

/// How a conditional write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The object holds what was written; its new ETag.
    Done(String),
    /// The condition did not hold and the object holds something else: another writer's.
    Refused,
}

/// The bucket holding the state, and the client that reaches it.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    client: Client,
    name: String,
}

/// The HTTP status of S3's answer, if it answered.
fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

impl Bucket {
    pub(crate) fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// `s3://bucket/key`, for messages.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// The error of a failed `operation` on `key`.
    fn failed<E>(&self, operation: &str, key: &str, e: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let call = CallError::of(&format!("S3 {operation}"), e);
        Error::Seam {
            seam: "S3 state",
            message: format!("{operation} {} failed: {call}", self.url(key)),
        }
    }

    /// The object at `key`, `None` when there is none.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Object>, Error> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            // No such key; a missing bucket (also a 404) is an error naming it.
            Err(e) if status(&e) == Some(404) && e.code() != Some("NoSuchBucket") => {
                return Ok(None);
            }
            Err(e) => return Err(self.failed("GetObject", key, &e)),
        };
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let body = output.body.collect().await.map_err(|e| Error::Seam {
            seam: "S3 state",
            message: format!("reading {} failed: {e}", self.url(key)),
        })?;
        Ok(Some(Object {
            body: body.into_bytes().to_vec(),
            etag,
        }))
    }

    /// Writes `body` at `key` if `condition` holds. A write whose answer was lost, or whose
    /// retry met the write itself ("412 Precondition Failed"), is settled by reading the
    /// object back: done exactly when it holds `body`. So a write is never repeated blindly
    /// and never reported as failed when it was applied.
    pub(crate) async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<Written, Error> {
        let mut attempt = 1;
        loop {
            let mut request = self
                .client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()));
            request = match condition {
                Condition::Absent => request.if_none_match("*"),
                Condition::Matches(etag) => request.if_match(etag),
            };
            let e = match request.send().await {
                Ok(output) => {
                    return Ok(Written::Done(output.e_tag().unwrap_or_default().to_owned()));
                }
                Err(e) => e,
            };
            match status(&e) {
                Some(409) if attempt < CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                // The condition failed: the object is someone else's, or our own write that
                // was applied before its answer was lost.
                Some(412) => return self.settle(key, body, None).await,
                // A client error changed nothing.
                Some(400..=499) => return Err(self.failed("PutObject", key, &e)),
                // No answer, or a server error after the SDK's retries: it may have been
                // applied.
                _ => {
                    let error = self.failed("PutObject", key, &e);
                    return self.settle(key, body, Some(error)).await;
                }
            }
        }
    }

    /// Whether the object at `key` holds `body`: `Done` when it does; else `Refused`, or
    /// `unsettled` (the error of a write that may not have been applied) when there is one.
    async fn settle(
        &self,
        key: &str,
        body: &[u8],
        unsettled: Option<Error>,
    ) -> Result<Written, Error> {
        match self.get(key).await {
            Ok(Some(object)) if object.body == body => Ok(Written::Done(object.etag)),
            Ok(_) => match unsettled {
                Some(error) => Err(error),
                None => Ok(Written::Refused),
            },
            Err(read) => Err(unsettled.unwrap_or(read)),
        }
    }

    /// Deletes `key` if its ETag is `etag`; `false` when it is another's (or gone).
    pub(crate) async fn delete_if(&self, key: &str, etag: &str) -> Result<bool, Error> {
        match self
            .client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(status(&e), Some(404 | 412)) => Ok(false),
            Err(e) => Err(self.failed("DeleteObject", key, &e)),
        }
    }

    /// One page of the keys under `prefix`, in ascending order, after `after`; and the
    /// token of the next page.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: i32,
    ) -> Result<(Vec<String>, Option<String>), Error> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_continuation_token(continuation)
            .send()
            .await
            .map_err(|e| self.failed("ListObjectsV2", prefix, &e))?;
        let keys = output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let next = output
            .is_truncated()
            .unwrap_or(false)
            .then(|| output.next_continuation_token().map(str::to_owned))
            .flatten();
        Ok((keys, next))
    }

    /// The "directories" right under `prefix` (common prefixes with delimiter `/`).
    pub(crate) async fn directories(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut found = Vec::new();
        let mut continuation = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|e| self.failed("ListObjectsV2", prefix, &e))?;
            found.extend(
                output
                    .common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            match output.next_continuation_token() {
                Some(token) if output.is_truncated().unwrap_or(false) => {
                    continuation = Some(token.to_owned());
                }
                _ => return Ok(found),
            }
        }
    }
}
