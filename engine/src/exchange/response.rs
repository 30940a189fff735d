//! Activation and return response files, signed by the vendor's server and read by the client.
//!
//! The signed content is a canonical binary encoding with exactly one byte string per value,
//! like a certificate's:
//!
//! ```text
//! "LICET-EXCHANGE" version:u8=1 kind:u8 (1 activation, 2 return) role:u8 (1 machine, 2 license-server)
//! license_key:str  fingerprint:map<str,str>  request_digest:[u8;32]  nonce:[u8;32]
//! update_counter:u64  issued_at:i64
//! activation: certificate:bytes (signed certificate bytes)  |  return: certificate_serial:str
//! ```
//!
//! Strings and byte strings are a big-endian `u32` length then the bytes (strings UTF-8); integers
//! big-endian; maps a `u32` count then entries in strictly ascending key order.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use super::xml::{self, Element, XmlWriter};
use super::{
    open_root, ActivationRequest, ExchangeError, Nonce, RequestDigest, ReturnRequest, Role,
    MAX_COMPONENTS,
};
use crate::certificate::{Binding, Certificate, CertificateKind};
use crate::fingerprint::Fingerprint;
use crate::server_license::ServerLicense;
use crate::signature::SignedKind;

const MAGIC: &[u8] = b"LICET-EXCHANGE";
const SIGNED_VERSION: u8 = 1;
const ACTIVATION_ROOT: &str = "licet-activation-response";
const RETURN_ROOT: &str = "licet-return-response";
const ELEMENTS: [&str; 9] = [
    "key",
    "fingerprint",
    "request-digest",
    "nonce",
    "update-counter",
    "issued-at",
    "certificate-serial",
    "signed",
    "signature",
];

/// What every response binds, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Binds {
    pub role: Role,
    pub license_key: String,
    pub machine: Fingerprint,
    pub request_digest: RequestDigest,
    pub nonce: Nonce,
    pub update_counter: u64,
    pub issued_at: DateTime<Utc>,
}

/// The kind-specific part of the signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Payload {
    /// The signed bytes of the activation certificate.
    Certificate(Vec<u8>),
    /// The serial of the returned certificate.
    ReturnedSerial(String),
    /// The bytes of a server license (the answer to a license server's activation).
    ServerLicense(Vec<u8>),
}

impl Payload {
    fn tag(&self) -> u8 {
        match self {
            Payload::Certificate(_) => 1,
            Payload::ReturnedSerial(_) => 2,
            Payload::ServerLicense(_) => 3,
        }
    }
}

/// The signed bytes, their signature and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signed {
    binds: Binds,
    signed_bytes: Vec<u8>,
    signature: Signature,
}

/// A verified activation response: the certificate for the machine that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationResponse {
    signed: Signed,
    certificate: Certificate,
}

/// A verified activation response for a license server: the vendor-signed server license bound to
/// the license server that asked (its fingerprint and its public key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerActivationResponse {
    signed: Signed,
    server_license: ServerLicense,
}

/// A verified return response: the server's confirmation that the activation is freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnResponse {
    signed: Signed,
    certificate_serial: String,
}

macro_rules! accessors {
    () => {
        /// A standalone machine or a network license server.
        pub fn role(&self) -> Role {
            self.signed.binds.role
        }

        /// The license key.
        pub fn license_key(&self) -> &str {
            &self.signed.binds.license_key
        }

        /// The fingerprint of the machine that made the request.
        pub fn machine(&self) -> &Fingerprint {
            &self.signed.binds.machine
        }

        /// The digest of the exact request file answered.
        pub fn request_digest(&self) -> RequestDigest {
            self.signed.binds.request_digest
        }

        /// The nonce of the request answered.
        pub fn nonce(&self) -> Nonce {
            self.signed.binds.nonce
        }

        /// The server's update counter for the license; each response has a larger one.
        pub fn update_counter(&self) -> u64 {
            self.signed.binds.update_counter
        }

        /// When the server issued the response.
        pub fn issued_at(&self) -> DateTime<Utc> {
            self.signed.binds.issued_at
        }

        pub(super) fn binds(&self) -> &Binds {
            &self.signed.binds
        }

        /// The exact bytes the signature covers.
        pub fn signed_bytes(&self) -> &[u8] {
            &self.signed.signed_bytes
        }
    };
}

impl ActivationResponse {
    /// Signs the answer to an allowed activation request.
    ///
    /// `request_digest` is [`RequestDigest::of`] the request file's exact bytes, `certificate`
    /// the activation certificate signed from the decision's claims (it must be bound to the
    /// request's machine and key and signed with `vendor`), `update_counter` the license's next
    /// update counter (at least 1, larger than any the server gave before).
    pub fn issue(
        request: &ActivationRequest,
        request_digest: RequestDigest,
        certificate: Certificate,
        update_counter: u64,
        issued_at: DateTime<Utc>,
        vendor: &SigningKey,
    ) -> Result<ActivationResponse, ExchangeError> {
        Certificate::from_bytes(&certificate.to_bytes(), &vendor.verifying_key())
            .map_err(|_| ExchangeError::CertificateMismatch("not signed with the vendor key"))?;
        check_certificate(&certificate, &request.license_key, &request.machine)
            .map_err(ExchangeError::CertificateMismatch)?;
        let binds = Binds {
            request_digest,
            update_counter,
            issued_at,
            ..Binds::answering(
                request.role,
                &request.license_key,
                &request.machine,
                request.nonce,
            )
        };
        let signed = sign(binds, &Payload::Certificate(certificate.to_bytes()), vendor)?;
        let response = ActivationResponse {
            signed,
            certificate,
        };
        check_size(&response.to_xml())?;
        Ok(response)
    }

    /// Reads an activation response file and verifies it with the vendor's public key.
    ///
    /// This checks the file alone; [`ExchangeState::accept_activation`](super::ExchangeState::accept_activation)
    /// then checks it answers a pending request of this machine.
    pub fn from_xml(
        file: &[u8],
        vendor: &VerifyingKey,
    ) -> Result<ActivationResponse, ExchangeError> {
        let (root, signed, payload) = read(file, ACTIVATION_ROOT, vendor)?;
        let Payload::Certificate(bytes) = payload else {
            return Err(ExchangeError::SignedContent("not an activation response"));
        };
        let certificate =
            Certificate::from_bytes(&bytes, vendor).map_err(ExchangeError::Certificate)?;
        check_certificate(
            &certificate,
            &signed.binds.license_key,
            &signed.binds.machine,
        )
        .map_err(ExchangeError::SignedContent)?;
        let response = ActivationResponse {
            signed,
            certificate,
        };
        compare(
            &root,
            &response.signed,
            &response.certificate.claims().serial,
        )?;
        check_layout(file, &response.to_xml())?;
        Ok(response)
    }

    /// The response file's text.
    pub fn to_xml(&self) -> String {
        render(
            ACTIVATION_ROOT,
            &self.signed,
            &self.certificate.claims().serial,
        )
    }

    accessors!();

    /// The activation certificate, verified with the vendor key and bound to the machine.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }
}

impl ServerActivationResponse {
    /// Signs the answer to an allowed activation request of a license server.
    ///
    /// `server_license` must be signed with `vendor`, for the request's key, bound to the
    /// request's fingerprint and naming the server key the request carried.
    pub fn issue(
        request: &ActivationRequest,
        request_digest: RequestDigest,
        server_license: ServerLicense,
        update_counter: u64,
        issued_at: DateTime<Utc>,
        vendor: &SigningKey,
    ) -> Result<ServerActivationResponse, ExchangeError> {
        if request.role != Role::LicenseServer {
            return Err(ExchangeError::CertificateMismatch(
                "only a license server's request is answered with a server license",
            ));
        }
        ServerLicense::from_bytes(&server_license.to_bytes(), &vendor.verifying_key())
            .map_err(|_| ExchangeError::CertificateMismatch("not signed with the vendor key"))?;
        check_server_license(&server_license, &request.license_key, &request.machine)
            .map_err(ExchangeError::CertificateMismatch)?;
        if request.server_key != Some(server_license.claims().server_key) {
            return Err(ExchangeError::CertificateMismatch(
                "the server license names another server key than the request",
            ));
        }
        let binds = Binds {
            request_digest,
            update_counter,
            issued_at,
            ..Binds::answering(
                request.role,
                &request.license_key,
                &request.machine,
                request.nonce,
            )
        };
        let signed = sign(
            binds,
            &Payload::ServerLicense(server_license.to_bytes()),
            vendor,
        )?;
        let response = ServerActivationResponse {
            signed,
            server_license,
        };
        check_size(&response.to_xml())?;
        Ok(response)
    }

    /// Reads a license server's activation response file and verifies it with the vendor's public
    /// key; [`ExchangeState::accept_server_activation`](super::ExchangeState::accept_server_activation)
    /// then checks it answers a pending request of this license server.
    pub fn from_xml(
        file: &[u8],
        vendor: &VerifyingKey,
    ) -> Result<ServerActivationResponse, ExchangeError> {
        let (root, signed, payload) = read(file, ACTIVATION_ROOT, vendor)?;
        let Payload::ServerLicense(bytes) = payload else {
            return Err(ExchangeError::SignedContent(
                "not a license server's activation response",
            ));
        };
        if signed.binds.role != Role::LicenseServer {
            return Err(ExchangeError::SignedContent(
                "a server license answers only a license server",
            ));
        }
        let server_license =
            ServerLicense::from_bytes(&bytes, vendor).map_err(ExchangeError::Certificate)?;
        check_server_license(
            &server_license,
            &signed.binds.license_key,
            &signed.binds.machine,
        )
        .map_err(ExchangeError::SignedContent)?;
        let response = ServerActivationResponse {
            signed,
            server_license,
        };
        compare(
            &root,
            &response.signed,
            &response.server_license.claims().serial,
        )?;
        check_layout(file, &response.to_xml())?;
        Ok(response)
    }

    /// The response file's text.
    pub fn to_xml(&self) -> String {
        render(
            ACTIVATION_ROOT,
            &self.signed,
            &self.server_license.claims().serial,
        )
    }

    accessors!();

    /// The server license, verified with the vendor key and bound to the license server's
    /// fingerprint.
    pub fn server_license(&self) -> &ServerLicense {
        &self.server_license
    }
}

impl ReturnResponse {
    /// Signs the answer to an allowed return request.
    ///
    /// `request_digest` is [`RequestDigest::of`] the request file's exact bytes, `update_counter`
    /// the license's next update counter. The server records `request.certificate_serial` as
    /// returned (see [`check_serial_not_returned`](super::check_serial_not_returned)).
    pub fn issue(
        request: &ReturnRequest,
        request_digest: RequestDigest,
        update_counter: u64,
        issued_at: DateTime<Utc>,
        vendor: &SigningKey,
    ) -> Result<ReturnResponse, ExchangeError> {
        xml::check_value("certificate-serial", &request.certificate_serial)?;
        let binds = Binds {
            request_digest,
            update_counter,
            issued_at,
            ..Binds::answering(
                request.role,
                &request.license_key,
                &request.machine,
                request.nonce,
            )
        };
        let payload = Payload::ReturnedSerial(request.certificate_serial.clone());
        let signed = sign(binds, &payload, vendor)?;
        let response = ReturnResponse {
            signed,
            certificate_serial: request.certificate_serial.clone(),
        };
        check_size(&response.to_xml())?;
        Ok(response)
    }

    /// Reads a return response file and verifies it with the vendor's public key.
    ///
    /// This checks the file alone; [`ExchangeState::accept_return`](super::ExchangeState::accept_return)
    /// then checks it answers a pending return of this machine.
    pub fn from_xml(file: &[u8], vendor: &VerifyingKey) -> Result<ReturnResponse, ExchangeError> {
        let (root, signed, payload) = read(file, RETURN_ROOT, vendor)?;
        let Payload::ReturnedSerial(certificate_serial) = payload else {
            return Err(ExchangeError::SignedContent("not a return response"));
        };
        compare(&root, &signed, &certificate_serial)?;
        let response = ReturnResponse {
            signed,
            certificate_serial,
        };
        check_layout(file, &response.to_xml())?;
        Ok(response)
    }

    /// The response file's text.
    pub fn to_xml(&self) -> String {
        render(RETURN_ROOT, &self.signed, &self.certificate_serial)
    }

    accessors!();

    /// The serial of the returned activation certificate.
    pub fn certificate_serial(&self) -> &str {
        &self.certificate_serial
    }
}

/// Whether an activation certificate certifies `license_key` on exactly `machine`.
fn check_certificate(
    certificate: &Certificate,
    license_key: &str,
    machine: &Fingerprint,
) -> Result<(), &'static str> {
    let claims = certificate.claims();
    if claims.kind != CertificateKind::Activation {
        return Err("the certificate is not an activation certificate");
    }
    if claims.license_key != license_key {
        return Err("the certificate is for another license key");
    }
    if claims.binding != Binding::Fingerprint(machine.components.clone()) {
        return Err("the certificate is bound to another machine");
    }
    Ok(())
}

impl Binds {
    /// What a response answering the request of `role` for `license_key` on `machine` with
    /// `nonce` binds; the digest, counter and time are the caller's to set.
    fn answering(role: Role, license_key: &str, machine: &Fingerprint, nonce: Nonce) -> Binds {
        Binds {
            role,
            license_key: license_key.to_owned(),
            machine: machine.clone(),
            request_digest: RequestDigest([0; 32]),
            nonce,
            update_counter: 0,
            issued_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// Refuses a response file larger than any exchange file may be.
fn check_size(xml: &str) -> Result<(), ExchangeError> {
    if xml.len() > super::MAX_FILE_BYTES {
        return Err(ExchangeError::TooLarge);
    }
    Ok(())
}

fn check_server_license(
    server_license: &ServerLicense,
    license_key: &str,
    machine: &Fingerprint,
) -> Result<(), &'static str> {
    let claims = server_license.claims();
    if claims.license_key != license_key {
        return Err("the server license is for another license key");
    }
    if claims.binding != Binding::Fingerprint(machine.components.clone()) {
        return Err("the server license is bound to another machine");
    }
    Ok(())
}

fn sign(binds: Binds, payload: &Payload, vendor: &SigningKey) -> Result<Signed, ExchangeError> {
    xml::check_value("key", &binds.license_key)?;
    xml::check_fingerprint(&binds.machine.components)?;
    let issued_at = xml::whole_seconds("issued-at", binds.issued_at)?;
    if binds.update_counter == 0 {
        return Err(ExchangeError::InvalidValue {
            field: "update-counter".to_owned(),
            reason: "must be a whole number from 1 without leading zeros",
        });
    }
    let binds = Binds { issued_at, ..binds };
    let signed_bytes = encode(&binds, payload);
    let signature = SignedKind::ExchangeResponse.sign(&signed_bytes, vendor);
    Ok(Signed {
        binds,
        signed_bytes,
        signature,
    })
}

/// Parses the file, verifies the signature over the decoded bytes and decodes them.
fn read(
    file: &[u8],
    root_name: &'static str,
    vendor: &VerifyingKey,
) -> Result<(Element, Signed, Payload), ExchangeError> {
    let (root, role) = open_root(file, root_name)?;
    let children = root.single_children(&ELEMENTS)?;
    for name in ELEMENTS {
        if name == "fingerprint" {
            xml::fingerprint(xml::child(&children, root_name, name)?)?;
        } else {
            xml::raw(&children, root_name, name)?;
        }
    }
    let signed_bytes = STANDARD
        .decode(xml::raw(&children, root_name, "signed")?)
        .map_err(|_| ExchangeError::InvalidBase64("signed"))?;
    let signature = STANDARD
        .decode(xml::raw(&children, root_name, "signature")?)
        .map_err(|_| ExchangeError::InvalidBase64("signature"))?;
    let signature = Signature::from_slice(&signature).map_err(|_| ExchangeError::BadSignature)?;
    SignedKind::ExchangeResponse
        .verify(&signed_bytes, &signature, vendor)
        .map_err(|_| ExchangeError::BadSignature)?;
    let (binds, payload) = decode(&signed_bytes)?;
    let fits_root = if root_name == ACTIVATION_ROOT {
        matches!(payload.tag(), 1 | 3)
    } else {
        payload.tag() == 2
    };
    if !fits_root {
        return Err(ExchangeError::SignedContent(
            "signed for another kind of response",
        ));
    }
    if binds.role != role {
        return Err(ExchangeError::FieldMismatch("role"));
    }
    Ok((
        root,
        Signed {
            binds,
            signed_bytes,
            signature,
        },
        payload,
    ))
}

/// Rejects the file when a readable field says something else than the signed content.
fn compare(root: &Element, signed: &Signed, serial: &str) -> Result<(), ExchangeError> {
    let children = root.single_children(&ELEMENTS)?;
    let binds = &signed.binds;
    let name = root.name.as_str();
    let checks: [(&'static str, String); 6] = [
        ("key", binds.license_key.clone()),
        ("request-digest", binds.request_digest.to_string()),
        ("nonce", binds.nonce.to_string()),
        ("update-counter", binds.update_counter.to_string()),
        ("issued-at", xml::format_time(binds.issued_at)),
        ("certificate-serial", serial.to_owned()),
    ];
    for (field, expected) in checks {
        if xml::raw(&children, name, field)? != expected {
            return Err(ExchangeError::FieldMismatch(field));
        }
    }
    let machine = xml::fingerprint(xml::child(&children, name, "fingerprint")?)
        .map_err(|_| ExchangeError::FieldMismatch("fingerprint"))?;
    if machine != binds.machine {
        return Err(ExchangeError::FieldMismatch("fingerprint"));
    }
    Ok(())
}

/// Rejects any change to the layout the server wrote; a UTF-8 byte order mark and CRLF line
/// endings (added by editors and mail) are tolerated.
fn check_layout(file: &[u8], expected: &str) -> Result<(), ExchangeError> {
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let text = std::str::from_utf8(file).map_err(|_| ExchangeError::NotUtf8)?;
    if text == expected || text.replace("\r\n", "\n") == expected {
        Ok(())
    } else {
        Err(ExchangeError::LayoutAltered)
    }
}

fn render(root: &str, signed: &Signed, serial: &str) -> String {
    let binds = &signed.binds;
    let mut writer = XmlWriter::new(root, binds.role.as_str());
    writer.leaf("key", &binds.license_key);
    writer.fingerprint(&binds.machine);
    writer.leaf("request-digest", &binds.request_digest.to_string());
    writer.leaf("nonce", &binds.nonce.to_string());
    writer.leaf("update-counter", &binds.update_counter.to_string());
    writer.leaf("issued-at", &xml::format_time(binds.issued_at));
    writer.leaf("certificate-serial", serial);
    writer.leaf("signed", &STANDARD.encode(&signed.signed_bytes));
    writer.leaf("signature", &STANDARD.encode(signed.signature.to_bytes()));
    writer.finish_unchecked(root)
}

// ---- canonical encoding ---------------------------------------------------------------------

fn encode(binds: &Binds, payload: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(MAGIC);
    out.push(SIGNED_VERSION);
    out.push(payload.tag());
    out.push(binds.role.tag());
    put_bytes(&mut out, binds.license_key.as_bytes());
    put_len(&mut out, binds.machine.components.len());
    for (name, value) in &binds.machine.components {
        put_bytes(&mut out, name.as_bytes());
        put_bytes(&mut out, value.as_bytes());
    }
    out.extend_from_slice(binds.request_digest.as_bytes());
    out.extend_from_slice(binds.nonce.as_bytes());
    out.extend_from_slice(&binds.update_counter.to_be_bytes());
    out.extend_from_slice(&binds.issued_at.timestamp().to_be_bytes());
    match payload {
        Payload::Certificate(bytes) => put_bytes(&mut out, bytes),
        Payload::ReturnedSerial(serial) => put_bytes(&mut out, serial.as_bytes()),
        Payload::ServerLicense(bytes) => put_bytes(&mut out, bytes),
    }
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths beyond u32 cannot occur within the file size limit; saturate rather than wrap.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn decode(bytes: &[u8]) -> Result<(Binds, Payload), ExchangeError> {
    let mut input = Decoder(bytes);
    if input.take(MAGIC.len())? != MAGIC {
        return Err(ExchangeError::SignedContent(
            "not a licet exchange response",
        ));
    }
    if input.u8()? != SIGNED_VERSION {
        return Err(ExchangeError::SignedContent("unsupported version"));
    }
    let kind = input.u8()?;
    let role = Role::from_tag(input.u8()?).ok_or(ExchangeError::SignedContent("unknown role"))?;
    let license_key = input.string()?;
    xml::check_value("key", &license_key)
        .map_err(|_| ExchangeError::SignedContent("invalid license key"))?;
    let count = input.len()?;
    if count > MAX_COMPONENTS {
        return Err(ExchangeError::SignedContent(
            "too many fingerprint components",
        ));
    }
    let mut machine = Fingerprint::default();
    for _ in 0..count {
        let name = input.string()?;
        if machine
            .components
            .last_key_value()
            .is_some_and(|(last, _)| *last >= name)
        {
            return Err(ExchangeError::SignedContent("fingerprint is not canonical"));
        }
        let value = input.string()?;
        machine.components.insert(name, value);
    }
    xml::check_fingerprint(&machine.components)
        .map_err(|_| ExchangeError::SignedContent("invalid fingerprint"))?;
    let request_digest = RequestDigest(input.array()?);
    let nonce = Nonce(input.array()?);
    let update_counter = u64::from_be_bytes(input.array()?);
    if update_counter == 0 {
        return Err(ExchangeError::SignedContent("update counter is zero"));
    }
    let issued_at = xml::whole_seconds(
        "issued-at",
        DateTime::from_timestamp(i64::from_be_bytes(input.array()?), 0)
            .ok_or(ExchangeError::SignedContent("issue time out of range"))?,
    )
    .map_err(|_| ExchangeError::SignedContent("issue time out of range"))?;
    let payload = match kind {
        1 => Payload::Certificate(input.bytes()?.to_vec()),
        2 => {
            let serial = input.string()?;
            xml::check_value("certificate-serial", &serial)
                .map_err(|_| ExchangeError::SignedContent("invalid certificate serial"))?;
            Payload::ReturnedSerial(serial)
        }
        3 => Payload::ServerLicense(input.bytes()?.to_vec()),
        _ => return Err(ExchangeError::SignedContent("unknown response kind")),
    };
    if !input.0.is_empty() {
        return Err(ExchangeError::SignedContent("trailing bytes"));
    }
    let binds = Binds {
        role,
        license_key,
        machine,
        request_digest,
        nonce,
        update_counter,
        issued_at,
    };
    Ok((binds, payload))
}

struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], ExchangeError> {
        let (head, tail) = self
            .0
            .split_at_checked(count)
            .ok_or(ExchangeError::SignedContent("truncated"))?;
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ExchangeError> {
        self.take(N)?
            .try_into()
            .map_err(|_| ExchangeError::SignedContent("truncated"))
    }

    fn u8(&mut self) -> Result<u8, ExchangeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, ExchangeError> {
        let len = u32::from_be_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| ExchangeError::SignedContent("truncated"))?;
        // A length never exceeds what is left: reject before anything is allocated.
        if len > self.0.len() {
            return Err(ExchangeError::SignedContent("truncated"));
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<&'a [u8], ExchangeError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, ExchangeError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ExchangeError::SignedContent("a string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn binds() -> Binds {
        Binds {
            role: Role::LicenseServer,
            license_key: "GCAD-NET-0001".into(),
            machine: Fingerprint::from_pairs([("cpu", "c"), ("mac", "m")]),
            request_digest: RequestDigest([3; 32]),
            nonce: Nonce([4; 32]),
            update_counter: 7,
            issued_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn signed_content_round_trips() {
        for payload in [
            Payload::Certificate(vec![1, 2, 3]),
            Payload::ReturnedSerial("abc".into()),
        ] {
            let bytes = encode(&binds(), &payload);
            assert_eq!(decode(&bytes).unwrap(), (binds(), payload));
        }
    }

    #[test]
    fn truncated_extended_and_non_canonical_content_is_rejected() {
        let bytes = encode(&binds(), &Payload::ReturnedSerial("abc".into()));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Err(ExchangeError::SignedContent("trailing bytes"))
        );
        // Swap the two fingerprint components so the names are out of order.
        let cpu = [&3u32.to_be_bytes()[..], b"cpu", &1u32.to_be_bytes(), b"c"].concat();
        let mac = [&3u32.to_be_bytes()[..], b"mac", &1u32.to_be_bytes(), b"m"].concat();
        let in_order = [cpu.clone(), mac.clone()].concat();
        let start = bytes
            .windows(in_order.len())
            .position(|window| window == in_order.as_slice())
            .unwrap();
        let mut swapped = bytes.clone();
        swapped[start..start + in_order.len()].copy_from_slice(&[mac, cpu].concat());
        assert_eq!(
            decode(&swapped),
            Err(ExchangeError::SignedContent("fingerprint is not canonical"))
        );
        let mut unknown_kind = bytes.clone();
        unknown_kind[MAGIC.len() + 1] = 9;
        assert!(decode(&unknown_kind).is_err());
        let mut zero_counter = binds();
        zero_counter.update_counter = 0;
        assert!(decode(&encode(&zero_counter, &Payload::Certificate(vec![]))).is_err());
    }
}
