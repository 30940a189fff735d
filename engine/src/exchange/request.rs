//! Activation and return request files, written by the client and read by the server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::xml::{self, XmlWriter};
use super::{open_root, ExchangeError, Nonce, Role};
use crate::fingerprint::Fingerprint;
use crate::policy::Method;
use crate::request::{Action, Actor, ProductRef, Request};

const ACTIVATION_ROOT: &str = "licet-activation-request";
const RETURN_ROOT: &str = "licet-return-request";

/// A request to bind a license key to this machine (or network license server), as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRequest {
    /// A standalone machine or a network license server.
    pub role: Role,
    /// The license key (serial number) the user entered.
    pub license_key: String,
    /// Product, edition and version to activate.
    pub target: ProductRef,
    /// The machine's fingerprint components (name -> hashed value).
    pub machine: Fingerprint,
    /// Fresh random bytes chosen by the client for this request.
    pub nonce: Nonce,
    /// When the request was made; written in whole seconds.
    pub created_at: DateTime<Utc>,
    /// A license server's Ed25519 public key, which its server license will name (role
    /// `license-server` only; required there).
    pub server_key: Option<[u8; 32]>,
}

/// A request to give back this machine's activation of a license key, as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRequest {
    /// A standalone machine or a network license server.
    pub role: Role,
    /// The license key being returned.
    pub license_key: String,
    /// Product, edition and version of the license.
    pub target: ProductRef,
    /// The machine's fingerprint components (name -> hashed value).
    pub machine: Fingerprint,
    /// Fresh random bytes chosen by the client for this request.
    pub nonce: Nonce,
    /// When the request was made; written in whole seconds.
    pub created_at: DateTime<Utc>,
    /// The serial of the activation certificate being returned.
    pub certificate_serial: String,
}

/// The fields both kinds of request share.
struct Common<'a> {
    role: Role,
    license_key: &'a str,
    target: &'a ProductRef,
    machine: &'a Fingerprint,
    nonce: &'a Nonce,
    created_at: DateTime<Utc>,
}

impl Common<'_> {
    fn writer(&self, root: &str) -> Result<XmlWriter, ExchangeError> {
        xml::check_value("key", self.license_key)?;
        xml::check_value("product", &self.target.product)?;
        xml::check_value("edition", &self.target.edition)?;
        xml::check_value("version", &self.target.version)?;
        xml::check_fingerprint(&self.machine.components)?;
        let created_at = xml::whole_seconds("created-at", self.created_at)?;
        let mut writer = XmlWriter::new(root, self.role.as_str());
        writer.leaf("key", self.license_key);
        writer.leaf("product", &self.target.product);
        writer.leaf("edition", &self.target.edition);
        writer.leaf("version", &self.target.version);
        writer.fingerprint(self.machine);
        writer.leaf("nonce", &self.nonce.to_string());
        writer.leaf("created-at", &xml::format_time(created_at));
        Ok(writer)
    }
}

struct Parsed {
    server_key: Option<[u8; 32]>,
    role: Role,
    license_key: String,
    target: ProductRef,
    machine: Fingerprint,
    nonce: Nonce,
    created_at: DateTime<Utc>,
    certificate_serial: Option<String>,
}

const COMMON_ELEMENTS: [&str; 7] = [
    "key",
    "product",
    "edition",
    "version",
    "fingerprint",
    "nonce",
    "created-at",
];

fn parse(file: &[u8], root_name: &'static str, returning: bool) -> Result<Parsed, ExchangeError> {
    let (root, role) = open_root(file, root_name)?;
    let mut allowed = COMMON_ELEMENTS.to_vec();
    if returning {
        allowed.push("certificate-serial");
    } else {
        allowed.push("server-key");
    }
    let children = root.single_children(&allowed)?;
    let license_key = xml::value(&children, root_name, "key")?;
    let target = ProductRef {
        product: xml::value(&children, root_name, "product")?,
        edition: xml::value(&children, root_name, "edition")?,
        version: xml::value(&children, root_name, "version")?,
    };
    let machine = xml::fingerprint(xml::child(&children, root_name, "fingerprint")?)?;
    let nonce = xml::raw(&children, root_name, "nonce")?.parse()?;
    let created_at = xml::parse_time("created-at", xml::raw(&children, root_name, "created-at")?)?;
    let certificate_serial = if returning {
        Some(xml::value(&children, root_name, "certificate-serial")?)
    } else {
        None
    };
    let server_key = if !returning && children.contains_key("server-key") {
        let text = xml::raw(&children, root_name, "server-key")?;
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| ExchangeError::InvalidBase64("server-key"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| ExchangeError::InvalidValue {
            field: "server-key".to_owned(),
            reason: "must be 32 bytes of base64",
        })?;
        Some(key)
    } else {
        None
    };
    Ok(Parsed {
        server_key,
        role,
        license_key,
        target,
        machine,
        nonce,
        created_at,
        certificate_serial,
    })
}

fn missing_server_key() -> ExchangeError {
    ExchangeError::InvalidValue {
        field: "server-key".to_owned(),
        reason: "a license server's activation request names its public key",
    }
}

fn server_key_on_machine() -> ExchangeError {
    ExchangeError::InvalidValue {
        field: "server-key".to_owned(),
        reason: "only a license server's activation request names a server key",
    }
}

impl ActivationRequest {
    fn common(&self) -> Common<'_> {
        Common {
            role: self.role,
            license_key: &self.license_key,
            target: &self.target,
            machine: &self.machine,
            nonce: &self.nonce,
            created_at: self.created_at,
        }
    }

    /// The request file's text.
    ///
    /// Fails when a value could not be read back: empty, with control characters or surrounding
    /// whitespace, a fingerprint without components, a time outside years 1970 to 9999, or a file
    /// larger than [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES).
    pub fn to_xml(&self) -> Result<String, ExchangeError> {
        let mut writer = self.common().writer(ACTIVATION_ROOT)?;
        match (self.role, &self.server_key) {
            (Role::LicenseServer, Some(key)) => writer.leaf("server-key", &STANDARD.encode(key)),
            (Role::LicenseServer, None) => return Err(missing_server_key()),
            (Role::Machine, Some(_)) => return Err(server_key_on_machine()),
            (Role::Machine, None) => {}
        }
        writer.finish(ACTIVATION_ROOT)
    }

    /// Reads an activation request file. Nothing in it is trusted: the server decides on it.
    pub fn from_xml(file: &[u8]) -> Result<ActivationRequest, ExchangeError> {
        let parsed = parse(file, ACTIVATION_ROOT, false)?;
        let server_key = match (parsed.role, parsed.server_key) {
            (Role::LicenseServer, Some(key)) => Some(key),
            (Role::LicenseServer, None) => return Err(missing_server_key()),
            (Role::Machine, Some(_)) => return Err(server_key_on_machine()),
            (Role::Machine, None) => None,
        };
        Ok(ActivationRequest {
            server_key,
            role: parsed.role,
            license_key: parsed.license_key,
            target: parsed.target,
            machine: parsed.machine,
            nonce: parsed.nonce,
            created_at: parsed.created_at,
        })
    }

    /// The engine request to decide on: a manual activation by the end user.
    pub fn engine_request(&self) -> Request {
        Request {
            actor: Actor::EndUser,
            action: Action::Activate {
                key: self.license_key.clone(),
                target: self.target.clone(),
                machine: self.machine.clone(),
                method: Method::Manual,
            },
        }
    }
}

impl ReturnRequest {
    fn common(&self) -> Common<'_> {
        Common {
            role: self.role,
            license_key: &self.license_key,
            target: &self.target,
            machine: &self.machine,
            nonce: &self.nonce,
            created_at: self.created_at,
        }
    }

    /// The return request file's text; fails like [`ActivationRequest::to_xml`].
    pub fn to_xml(&self) -> Result<String, ExchangeError> {
        xml::check_value("certificate-serial", &self.certificate_serial)?;
        let mut writer = self.common().writer(RETURN_ROOT)?;
        writer.leaf("certificate-serial", &self.certificate_serial);
        writer.finish(RETURN_ROOT)
    }

    /// Reads a return request file. Nothing in it is trusted: the server decides on it; the
    /// engine frees the activation only when the certificate serial is the activation's current
    /// one, and refuses a serial that was returned before (`EXCHANGE_SERIAL_RETURNED`).
    pub fn from_xml(file: &[u8]) -> Result<ReturnRequest, ExchangeError> {
        let parsed = parse(file, RETURN_ROOT, true)?;
        Ok(ReturnRequest {
            role: parsed.role,
            license_key: parsed.license_key,
            target: parsed.target,
            machine: parsed.machine,
            nonce: parsed.nonce,
            created_at: parsed.created_at,
            certificate_serial: parsed.certificate_serial.unwrap_or_default(),
        })
    }

    /// The engine request to decide on: a manual return by the end user, presenting the
    /// certificate serial the file names (the activation's current one, or nothing is freed).
    pub fn engine_request(&self) -> Request {
        Request {
            actor: Actor::EndUser,
            action: Action::Return {
                key: self.license_key.clone(),
                machine: self.machine.clone(),
                method: Method::Manual,
                certificate_serial: Some(self.certificate_serial.clone()),
            },
        }
    }
}
