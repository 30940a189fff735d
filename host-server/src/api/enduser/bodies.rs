//! The end-user routes' request and answer bodies, with their limits as the OpenAPI document
//! states them, and what each request asks the engine to decide.

use super::*;

/// The answer to an allowed request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Decision)]
pub struct DecisionBody {
    /// Always `allow` (denials are error answers).
    #[schema(schema_with = schemas::allow)]
    pub verdict: Verdict,
    /// The engine's code, e.g. `ACTIVATED`, `SEAT_GRANTED`.
    pub code: String,
    /// The deciding rule.
    pub rule: String,
    /// A sentence.
    pub message: String,
    /// The signed certificate in armored text (`-----BEGIN LICET CERTIFICATE-----`), when one
    /// was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub certificate: Option<String>,
    /// The certificate's claims, for convenience (verify `certificate`, don't trust these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub claims: Option<CertificateClaims>,
    /// When the seat lease (or borrow) ends, for checkout, heartbeat and borrow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = DateTime<Utc>)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The vendor-signed server license in armored text: what a license server was granted (its
    /// activation and revalidation), or the license a license server's seat certificate is
    /// signed under (verify the chain with the vendor key), armored as `-----BEGIN LICET SERVER
    /// LICENSE-----`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub server_license: Option<String>,
}

impl DecisionBody {
    /// The answer to an outcome, or the error of a denial.
    pub fn from_outcome(outcome: Outcome) -> Result<DecisionBody, AppError> {
        if !outcome.decision.is_allowed() {
            return Err(AppError::denied(&outcome.decision));
        }
        Ok(DecisionBody {
            verdict: outcome.decision.verdict,
            code: outcome.decision.code.as_str().to_owned(),
            rule: outcome.decision.rule,
            message: outcome.decision.message,
            certificate: outcome.certificate.as_ref().map(|c| c.to_armored()),
            claims: outcome.certificate.map(|c| c.claims().clone()),
            lease_expires_at: outcome.lease_expires_at,
            server_license: outcome
                .server_license
                .as_ref()
                .map(|server_license| server_license.to_armored()),
        })
    }
}

/// `POST /v1/activate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ActivateRequest)]
pub struct ActivateBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Product, edition and version being activated.
    #[schema(value_type = schemas::Target)]
    pub target: ProductRef,
    /// Machine fingerprint: component name -> hashed value.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// `online` (default) or `manual`.
    #[serde(default)]
    #[schema(schema_with = schemas::method)]
    pub method: Option<Method>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// A dongle's proof of presence: the challenge the server issued and the dongle's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DongleProof)]
pub struct DongleProofBody {
    /// The challenge from `POST /v1/dongle/challenge`, base64.
    #[schema(schema_with = schemas::challenge)]
    pub challenge: String,
    /// The dongle's public key and its signature of the challenge, base64 of 96 bytes.
    #[schema(pattern = "^[A-Za-z0-9+/]{128}$")]
    pub proof: String,
}

/// `POST /v1/dongle/challenge`: a challenge for the machine's dongle to sign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = DongleChallenge)]
pub struct DongleChallengeBody {
    /// 32 bytes, base64.
    pub challenge: String,
    /// The last moment an answer is accepted.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/validate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ValidateRequest)]
pub struct ValidateBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Machine fingerprint.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// The serial of the certificate the machine holds, if any (a returned one is refused).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub certificate_serial: Option<String>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// `POST /v1/return`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnRequest)]
pub struct ReturnBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// The machine whose activation is removed.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// `online` (default) or `manual`.
    #[serde(default)]
    #[schema(schema_with = schemas::method)]
    pub method: Option<Method>,
    /// The serial of the activation's current certificate; an end user's return without it (or
    /// with another) frees nothing.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub certificate_serial: Option<String>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// `POST /v1/transfer`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TransferRequest)]
pub struct TransferBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// The machine giving the license up.
    #[schema(schema_with = schemas::fingerprint)]
    pub from: Fingerprint,
    /// The machine receiving it.
    #[schema(schema_with = schemas::fingerprint)]
    pub to: Fingerprint,
}

/// `POST /v1/seats/checkout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CheckoutRequest)]
pub struct CheckoutBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Product, edition and version being run.
    #[schema(value_type = schemas::Target)]
    pub target: ProductRef,
    /// Client machine.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// Session identifier; the same session gets the same seat back.
    #[schema(min_length = 1, max_length = 256)]
    pub session: String,
}

/// `POST /v1/seats/heartbeat`, `/v1/seats/release`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SessionRequest)]
pub struct SessionBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Session holding the seat.
    #[schema(min_length = 1, max_length = 256)]
    pub session: String,
}

/// `POST /v1/seats/return-borrowed`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnBorrowedRequest)]
pub struct ReturnBorrowedBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Session holding the borrowed seat.
    #[schema(min_length = 1, max_length = 256)]
    pub session: String,
    /// The serial of the borrow certificate given back; an end user's return without it (or
    /// with another) frees nothing.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub certificate_serial: Option<String>,
}

/// `POST /v1/seats/borrow`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BorrowRequest)]
pub struct BorrowBody {
    /// License key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Product, edition and version being run.
    #[schema(value_type = schemas::Target)]
    pub target: ProductRef,
    /// Client machine.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// Session identifier.
    #[schema(min_length = 1, max_length = 256)]
    pub session: String,
    /// When the seat comes back by itself (RFC 3339).
    pub until: DateTime<Utc>,
}

/// `POST /v1/trials/start`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TrialStartRequest)]
pub struct TrialStartBody {
    /// Product, edition and version to try.
    #[schema(value_type = schemas::Target)]
    pub target: ProductRef,
    /// Machine fingerprint.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
}

/// `POST /v1/trials/validate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TrialValidateRequest)]
pub struct TrialValidateBody {
    /// Product of the trial.
    #[schema(schema_with = schemas::product)]
    pub product: String,
    /// Machine fingerprint.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
}

impl DecisionRequest for ActivateBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, state: &AppState) -> Result<(Action, Extras), AppError> {
        let dongle = proven_dongle(state, self.dongle)?;
        let action = Action::Activate {
            key: self.key,
            target: self.target,
            machine: self.machine,
            method: self.method.unwrap_or(Method::Online),
        };
        Ok((action, Extras::dongle(dongle)))
    }
}

impl DecisionRequest for ValidateBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, state: &AppState) -> Result<(Action, Extras), AppError> {
        let dongle = proven_dongle(state, self.dongle)?;
        let action = Action::Validate {
            key: self.key,
            machine: self.machine,
            certificate_serial: self.certificate_serial,
        };
        Ok((action, Extras::dongle(dongle)))
    }
}

impl DecisionRequest for ReturnBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, state: &AppState) -> Result<(Action, Extras), AppError> {
        let dongle = proven_dongle(state, self.dongle)?;
        let action = Action::Return {
            key: self.key,
            machine: self.machine,
            method: self.method.unwrap_or(Method::Online),
            certificate_serial: self.certificate_serial,
        };
        Ok((action, Extras::dongle(dongle)))
    }
}

impl DecisionRequest for TransferBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let action = Action::Transfer {
            key: self.key,
            from: self.from,
            to: self.to,
        };
        Ok((action, Extras::default()))
    }
}

impl DecisionRequest for CheckoutBody {
    const ATTEMPT: Attempt = Attempt::Checked;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let action = Action::Checkout {
            key: self.key,
            target: self.target,
            machine: self.machine,
            session: self.session,
        };
        Ok((action, Extras::default()))
    }
}

/// `POST /v1/seats/heartbeat`: a [`SessionBody`] renewing its lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Heartbeat(pub SessionBody);

/// `POST /v1/seats/release`: a [`SessionBody`] giving its seat back.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Release(pub SessionBody);

/// A body that is a [`SessionBody`] on the wire has its schema.
macro_rules! session_schema {
    ($body:ty) => {
        impl utoipa::PartialSchema for $body {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                SessionBody::schema()
            }
        }

        impl ToSchema for $body {
            fn name() -> std::borrow::Cow<'static, str> {
                SessionBody::name()
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                SessionBody::schemas(schemas);
            }
        }
    };
}

session_schema!(Heartbeat);
session_schema!(Release);

impl DecisionRequest for Heartbeat {
    const ATTEMPT: Attempt = Attempt::Checked;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let Heartbeat(SessionBody { key, session }) = self;
        Ok((Action::Heartbeat { key, session }, Extras::default()))
    }
}

impl DecisionRequest for Release {
    const ATTEMPT: Attempt = Attempt::Checked;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let Release(SessionBody { key, session }) = self;
        Ok((Action::Release { key, session }, Extras::default()))
    }
}

impl DecisionRequest for BorrowBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let action = Action::Borrow {
            key: self.key,
            target: self.target,
            machine: self.machine,
            session: self.session,
            until: self.until,
        };
        Ok((action, Extras::default()))
    }
}

impl DecisionRequest for ReturnBorrowedBody {
    const ATTEMPT: Attempt = Attempt::Checked;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let action = Action::ReturnBorrowed {
            key: self.key,
            session: self.session,
            certificate_serial: self.certificate_serial,
        };
        Ok((action, Extras::default()))
    }
}

impl DecisionRequest for TrialStartBody {
    const ATTEMPT: Attempt = Attempt::Counted;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        let action = Action::StartTrial {
            target: self.target,
            machine: self.machine,
        };
        Ok((action, Extras::default()))
    }
}

impl DecisionRequest for TrialValidateBody {
    const ATTEMPT: Attempt = Attempt::Checked;

    fn action(self, _state: &AppState) -> Result<(Action, Extras), AppError> {
        check_field("product", &self.product)?;
        let action = Action::ValidateTrial {
            machine: self.machine,
        };
        let extras = Extras {
            product: Some(self.product),
            ..Extras::default()
        };
        Ok((action, extras))
    }
}
