//! Turning EC2 API errors into provider errors: the AWS error code decides
//! whether a retry, another instance type, or a config fix can help.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ProviderError;

/// What an EC2 error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// Slow down and call again: backoff retry.
    Throttled,
    /// AWS-side trouble worth a backoff retry.
    Transient,
    /// No room for this request right now: try another type, subnet or
    /// market; if none works the pool backs off.
    Capacity,
    /// Retrying cannot help: fail the waiting builds fast.
    Permanent,
}

/// Classifies an EC2 error code. Unknown codes are `None`: the HTTP status
/// decides.
pub fn classify_code(code: &str) -> Option<CodeClass> {
    const THROTTLED: &[&str] = &[
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    ];
    const TRANSIENT: &[&str] = &[
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "IncorrectInstanceState",
        "IncorrectState",
    ];
    const CAPACITY: &[&str] = &[
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
    ];
    if THROTTLED.contains(&code) {
        Some(CodeClass::Throttled)
    } else if TRANSIENT.contains(&code) {
        Some(CodeClass::Transient)
    } else if CAPACITY.contains(&code) {
        Some(CodeClass::Capacity)
    } else if code.starts_with("Invalid")
        || code.starts_with("Unauthorized")
        || code.starts_with("MissingParameter")
        || matches!(
            code,
            "AuthFailure"
                | "Blocked"
                | "OptInRequired"
                | "PendingVerification"
                | "Unsupported"
                | "UnsupportedOperation"
                | "UnknownParameter"
                | "SignatureDoesNotMatch"
                | "IdempotentParameterMismatch"
                | "DryRunOperation"
        )
    {
        Some(CodeClass::Permanent)
    } else {
        None
    }
}

/// Whether a provider error is worth calling the same API again for.
pub fn is_retryable(e: &ProviderError) -> bool {
    !e.is_permanent() && code_class(e) != Some(CodeClass::Capacity)
}

/// The class of a provider error's AWS code, if it has a known one.
pub fn code_class(e: &ProviderError) -> Option<CodeClass> {
    e.code.as_deref().and_then(classify_code)
}

/// Converts an SDK error, which stays its source; `action` completes
/// "failed to …".
pub fn from_sdk<E>(action: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let converted = match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let status = service.raw().status().as_u16();
            let detail = service
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
            let class = code.as_deref().and_then(classify_code).unwrap_or(
                if status >= 500 || status == 429 {
                    CodeClass::Transient
                } else {
                    CodeClass::Permanent
                },
            );
            let message = match &code {
                Some(code) => format!("failed to {action}: {code}: {detail}"),
                None => format!("failed to {action}: HTTP {status}: {detail}"),
            };
            let e = match class {
                CodeClass::Permanent => ProviderError::permanent(message),
                _ => ProviderError::transient(message),
            };
            match code {
                Some(code) => e.with_code(code),
                None => e,
            }
        }
        // The request could not even be built: a bad setting.
        SdkError::ConstructionFailure(_) => {
            ProviderError::permanent(format!("failed to {action}: {}", DisplayErrorContext(&err)))
        }
        // Timeouts, connection failures, unreadable responses.
        _ => ProviderError::transient(format!("failed to {action}: {}", DisplayErrorContext(&err))),
    };
    converted.with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: &str, status: u16) -> ProviderError {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("something went wrong")
            .build();
        let err = aws_sdk_ec2::operation::run_instances::RunInstancesError::generic(meta);
        let raw = Response::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        from_sdk("launch an instance", SdkError::service_error(err, raw))
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(
            classify_code("RequestLimitExceeded"),
            Some(CodeClass::Throttled)
        );
        assert_eq!(
            classify_code("InsufficientInstanceCapacity"),
            Some(CodeClass::Capacity)
        );
        assert_eq!(
            classify_code("InvalidAMIID.NotFound"),
            Some(CodeClass::Permanent)
        );
        assert_eq!(
            classify_code("InvalidParameterValue"),
            Some(CodeClass::Permanent)
        );
        assert_eq!(
            classify_code("UnauthorizedOperation"),
            Some(CodeClass::Permanent)
        );
        assert_eq!(classify_code("InternalError"), Some(CodeClass::Transient));
        assert_eq!(classify_code("SomethingNew"), None);
    }

    #[test]
    fn permanent_errors_carry_the_code_and_fail_fast() {
        let e = service_error("InvalidAMIID.Malformed", 400);
        assert!(e.is_permanent());
        assert_eq!(e.code.as_deref(), Some("InvalidAMIID.Malformed"));
        assert_eq!(
            e.message,
            "failed to launch an instance: InvalidAMIID.Malformed: something went wrong"
        );
        assert!(!is_retryable(&e));
        let e = service_error("UnauthorizedOperation", 403);
        assert!(e.is_permanent() && !is_retryable(&e));
    }

    #[test]
    fn throttling_is_retried_and_capacity_is_not() {
        let e = service_error("RequestLimitExceeded", 503);
        assert!(!e.is_permanent() && is_retryable(&e));
        let e = service_error("InsufficientInstanceCapacity", 500);
        assert!(!e.is_permanent());
        assert!(!is_retryable(&e), "capacity moves on, it does not retry");
        assert_eq!(code_class(&e), Some(CodeClass::Capacity));
    }

    #[test]
    fn sdk_errors_stay_the_cause() {
        let e = service_error("InvalidAMIID.Malformed", 400);
        let chain = burst_common::error_chain::Chain(&e).to_string();
        assert!(
            chain.starts_with(
                "failed to launch an instance: InvalidAMIID.Malformed: something went wrong: "
            ),
            "{chain}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn unknown_codes_go_by_status() {
        assert!(!service_error("Mystery", 502).is_permanent());
        assert!(service_error("Mystery", 400).is_permanent());
    }
}
