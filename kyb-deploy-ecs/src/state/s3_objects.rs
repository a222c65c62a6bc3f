//! [`S3Objects`]: the state backend's objects in an S3 bucket: conditional writes with
//! `If-None-Match: *` and `If-Match`, deletes with `If-Match`, and listings.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use kyb_deploy_core::Error;
use kyb_deploy_core::shared_state::{Condition, Listed, Object, ObjectStore, Page, PutAnswer};

use crate::error::CallError;

/// The bucket holding the state, and the client that reaches it.
#[derive(Clone, Debug)]
pub(crate) struct S3Objects {
    client: Client,
    name: String,
}

/// The HTTP status of S3's answer, if it answered.
fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

impl S3Objects {
    pub(crate) fn new(client: Client, name: String) -> Self {
        Self { client, name }
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
}

#[async_trait]
impl ObjectStore for S3Objects {
    fn seam(&self) -> &'static str {
        "S3 state"
    }

    /// `s3://bucket/key`.
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// The object at `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Object>, Error> {
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

    /// `If-None-Match: *` or `If-Match`. 409 (another conditional write of the key was in
    /// flight) is "busy"; 412 a failed condition; a 5xx after the SDK's retries, or no
    /// answer, may have been applied.
    async fn try_put(&self, key: &str, body: &[u8], condition: Condition<'_>) -> PutAnswer {
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
            Ok(output) => return PutAnswer::Done(output.e_tag().unwrap_or_default().to_owned()),
            Err(e) => e,
        };
        match status(&e) {
            Some(409) => PutAnswer::Busy(self.failed("PutObject", key, &e)),
            Some(412) => PutAnswer::ConditionFailed,
            Some(400..=499) => PutAnswer::Rejected(self.failed("PutObject", key, &e)),
            _ => PutAnswer::Unanswered(self.failed("PutObject", key, &e)),
        }
    }

    /// Deletes `key` if its ETag is `etag`; `false` when it is another's (or gone).
    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool, Error> {
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

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max: usize,
    ) -> Result<Page, Error> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .max_keys(i32::try_from(max).unwrap_or(i32::MAX))
            .set_continuation_token(continuation)
            .send()
            .await
            .map_err(|e| self.failed("ListObjectsV2", prefix, &e))?;
        let objects = output
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|key| Listed {
                key: key.to_owned(),
                object: None,
            })
            .collect();
        let next = output
            .is_truncated()
            .unwrap_or(false)
            .then(|| output.next_continuation_token().map(str::to_owned))
            .flatten();
        Ok(Page { objects, next })
    }

    /// The "directories" right under `prefix` (common prefixes with delimiter `/`).
    async fn directories(&self, prefix: &str) -> Result<Vec<String>, Error> {
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
