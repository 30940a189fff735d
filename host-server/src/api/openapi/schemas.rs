//! The schemas the body types cannot derive by themselves: the engine's types as the API writes
//! them (fingerprints, targets, terms, bindings, license and order fields), base64 patterns, and
//! the names the loaded policies declare, which are known only at run time. A field naming one
//! (a product, an edition, a feature, ...) is marked with [`DECLARED`]; [`Declared::fill`] puts
//! the policies' names in its place when the document is served.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::ToSchema;

use crate::fields::{MAX_COMPONENTS, MAX_FIELD};
use crate::service::Policies;

/// The extension that marks a schema whose values are names the loaded policies declare: its
/// value is the kind of name (`products`, `versions`, `editions`, `license_types`, `features`,
/// `counters`).
pub const DECLARED: &str = "x-licet-declared";

/// Canonical base64 of 32 bytes: 43 characters, the last of them with its two low bits clear,
/// and one `=`.
const BASE64_32: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$";

/// What the loaded policies declare, across products.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    products: Vec<String>,
    versions: Vec<String>,
    editions: Vec<String>,
    license_types: Vec<String>,
    features: Vec<String>,
    counters: Vec<String>,
}

impl Declared {
    /// The names `policies` declare, each kind sorted once.
    pub(crate) fn of(policies: &Policies) -> Declared {
        let mut declared = Declared::default();
        for policy in policies.values() {
            declared.products.push(policy.product.id.clone());
            declared.versions.push(policy.product.version.clone());
            declared
                .editions
                .extend(policy.product.editions.iter().cloned());
            declared
                .license_types
                .extend(policy.license_types.keys().cloned());
            declared
                .features
                .extend(policy.product.features.keys().cloned());
            declared
                .counters
                .extend(policy.product.counters.keys().cloned());
        }
        for names in [
            &mut declared.products,
            &mut declared.versions,
            &mut declared.editions,
            &mut declared.license_types,
            &mut declared.features,
            &mut declared.counters,
        ] {
            names.sort();
            names.dedup();
        }
        declared
    }

    fn names(&self, kind: &str) -> Option<&[String]> {
        Some(match kind {
            "products" => &self.products,
            "versions" => &self.versions,
            "editions" => &self.editions,
            "license_types" => &self.license_types,
            "features" => &self.features,
            "counters" => &self.counters,
            _ => return None,
        })
    }

    /// Replaces every [`DECLARED`] mark in `value` with the enum of the names it stands for
    /// (and `null` too where the schema admits null).
    pub(crate) fn fill(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                self.fill_object(object);
                object.values_mut().for_each(|value| self.fill(value));
            }
            Value::Array(items) => items.iter_mut().for_each(|value| self.fill(value)),
            _ => {}
        }
    }

    fn fill_object(&self, object: &mut Map<String, Value>) {
        let Some(Value::String(kind)) = object.get(DECLARED) else {
            return;
        };
        let Some(names) = self.names(kind) else {
            return;
        };
        let mut values: Vec<Value> = names
            .iter()
            .map(|name| Value::from(name.as_str()))
            .collect();
        let nullable = match object.get("type") {
            Some(Value::Array(types)) => types.iter().any(|kind| kind == "null"),
            _ => false,
        };
        if nullable {
            values.push(Value::Null);
        }
        object.remove(DECLARED);
        object.insert("enum".to_owned(), Value::Array(values));
    }
}

/// A string that is one of the names of `kind` the policies declare.
fn declared(kind: &str, nullable: bool) -> ObjectBuilder {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .extensions(Some(ExtensionsBuilder::new().add(DECLARED, kind).build()))
}

/// A product the policies declare.
pub fn product() -> Schema {
    declared("products", false).into()
}

/// An edition the policies declare.
pub fn edition() -> Schema {
    declared("editions", false).into()
}

/// A version the policies declare.
pub fn version() -> Schema {
    declared("versions", false).into()
}

/// A version the policies declare, or `null`.
pub fn optional_version() -> Schema {
    declared("versions", true).into()
}

/// A license type the policies declare.
pub fn license_type() -> Schema {
    declared("license_types", false).into()
}

/// Features of a request: declared feature names -> on or off.
pub fn feature_map() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(declared("features", false)))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
        .into()
}

/// Counters of a request: declared counter names -> integers of 64 bits.
pub fn counter_map() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(declared("counters", false)))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(i64::MIN))
                .maximum(Some(i64::MAX)),
        ))
        .into()
}

/// A field of the API: 1 to [`MAX_FIELD`] characters.
fn field() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_FIELD))
}

/// A machine fingerprint of a request.
pub fn fingerprint() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .max_properties(Some(MAX_COMPONENTS))
        .property_names(Some(field()))
        .additional_properties(Some(field()))
        .description(Some(
            "fingerprint components: name -> hashed value, e.g. machine-id, mac, cpu, disk",
        ))
        .into()
}

/// `online`, `manual` or `null` (the engine's `Method`).
pub fn method() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            Value::from("online"),
            Value::from("manual"),
            Value::Null,
        ]))
        .into()
}

/// The activation methods of a license type.
pub fn methods() -> Schema {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["online", "manual"])),
        )
        .into()
}

/// A string that is one of `values`.
fn one_of(values: &[&str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// The verdict of an allowed request.
pub fn allow() -> Schema {
    one_of(&["allow"])
}

/// The verdict of an audit entry.
pub fn allow_or_deny() -> Schema {
    one_of(&["allow", "deny"])
}

/// The storage backend.
pub fn storage() -> Schema {
    one_of(&["sqlite", "postgres"])
}

/// A product's licensing model.
pub fn model() -> Schema {
    one_of(&["standard", "web"])
}

/// A license's status.
pub fn license_status() -> Schema {
    one_of(&["enabled", "revoked"])
}

/// A seat's state.
pub fn seat_state() -> Schema {
    one_of(&["held", "borrowed", "lapsed"])
}

/// An Ed25519 public key of a license server, base64 of 32 bytes.
pub fn server_key() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(BASE64_32))
        .description(Some(
            "the license server's Ed25519 public key, base64 of 32 bytes",
        ))
        .into()
}

/// The challenge of `POST /v1/dongle/challenge`, base64 of 32 bytes.
pub fn challenge() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(BASE64_32))
        .description(Some(
            "the challenge of POST /v1/dongle/challenge, base64 of 32 bytes",
        ))
        .into()
}

fn date_time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// A license's term as a request states it (the engine's `Term`): `"perpetual"` or
/// `{ "rental": { "ends_at": date-time } }`.
pub fn input_term() -> Schema {
    term(true)
}

/// A license's term as an answer writes it.
pub fn output_term() -> Schema {
    term(false)
}

fn term(closed: bool) -> Schema {
    let ends_at = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("ends_at", date_time());
    let ends_at = if closed {
        ends_at.required("ends_at")
    } else {
        ends_at
    };
    let rental = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("rental", ends_at);
    let rental = if closed {
        rental
            .required("rental")
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
    } else {
        rental
    };
    OneOfBuilder::new()
        .item(one_of(&["perpetual"]))
        .item(rental)
        .description(Some(
            "\"perpetual\" or { \"rental\": { \"ends_at\": date-time } }",
        ))
        .into()
}

/// What an activation or a seat is bound to (the engine's `Binding`).
pub fn binding() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "{ \"fingerprint\": { name: value } } or { \"dongle\": serial }",
        ))
        .into()
}

/// What an activation or a seat is bound to, or `null`.
pub fn optional_binding() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "{ \"fingerprint\": { name: value } } or { \"dongle\": serial }",
        ))
        .into()
}

/// The product, edition and version a request is for (the engine's `ProductRef`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Target {
    /// Product identifier.
    #[schema(schema_with = product)]
    product: String,
    /// Edition, e.g. `professional`.
    #[schema(schema_with = edition)]
    edition: String,
    /// Version, e.g. `2027`.
    #[schema(schema_with = version)]
    version: String,
}

/// The terms a limited license fixed at its first activation (the engine's `LimitedTerms`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LimitedTerms {
    /// Start of the fixed date window.
    not_before: DateTime<Utc>,
    /// Expiry.
    expires_at: DateTime<Utc>,
    /// Features at first activation.
    features: std::collections::BTreeMap<String, bool>,
    /// Counters at first activation.
    counters: std::collections::BTreeMap<String, i64>,
}

/// A license as the engine keeps it (the engine's `License`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LicenseFields {
    /// The license key (serial number).
    key: String,
    /// Product identifier.
    product: String,
    /// License type name.
    license_type: String,
    /// Edition the key is valid for.
    edition: String,
    /// Version the key is valid for.
    version: String,
    /// Perpetual or rental.
    #[schema(schema_with = output_term, required = false)]
    term: (),
    /// Seats of a network license (the type's default seats when `null`).
    #[schema(required = false)]
    seats: Option<u32>,
    /// License-level features.
    #[schema(required = false)]
    features: std::collections::BTreeMap<String, bool>,
    /// License-level counters.
    #[schema(required = false)]
    counters: std::collections::BTreeMap<String, i64>,
    /// Enabled or revoked.
    #[schema(schema_with = license_status)]
    status: (),
    /// The serial of the dongle a dongle license lives on.
    #[schema(required = false)]
    dongle: Option<String>,
    /// The client that owns the license (standard model).
    #[schema(required = false)]
    client: Option<String>,
    /// Terms fixed at the first activation of a limited license.
    #[schema(required = false)]
    limited: Option<LimitedTerms>,
}

/// An order as the engine keeps it (the engine's `Order`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OrderFields {
    /// Order identifier.
    id: String,
    /// Owning client.
    client: String,
    /// Order-level features.
    #[schema(required = false)]
    features: std::collections::BTreeMap<String, bool>,
    /// Order-level counters.
    #[schema(required = false)]
    counters: std::collections::BTreeMap<String, i64>,
}

/// An activation as the engine keeps it (the engine's `Activation`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ActivationFields {
    /// What the activation is bound to now.
    #[schema(schema_with = binding)]
    binding: (),
    /// When it was made.
    activated_at: DateTime<Utc>,
    /// The binding recorded at activation, which drift is measured against.
    #[schema(schema_with = optional_binding, required = false)]
    anchor: (),
    /// The serial of the latest certificate (or server license) issued for it.
    #[schema(required = false)]
    certificate_serial: Option<String>,
}

/// The schema of `T`, as a reference when it has a name.
pub fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}
