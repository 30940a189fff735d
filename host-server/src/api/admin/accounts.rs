//! Client accounts: creating them, their tokens and their passwords of the client interface.

use super::*;

/// `POST /v1/admin/clients` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewClient)]
pub struct NewClientBody {
    /// Identifier: letters, digits, `-`, `_`, `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A new client and its token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewClientAnswer {
    /// The client.
    pub client: ClientRecordBody,
    /// Its bearer token, shown once.
    pub token: String,
}

/// A client account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Client)]
pub struct ClientRecordBody {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it has a token.
    pub has_token: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<ClientRecord> for ClientRecordBody {
    fn from(record: ClientRecord) -> Self {
        ClientRecordBody {
            id: record.id,
            name: record.name,
            has_token: record.has_token,
            created_at: record.created_at,
        }
    }
}

/// `POST /v1/admin/clients`.
#[utoipa::path(
    post,
    path = "/v1/admin/clients",
    summary = "Create a client account and its token (shown once)",
    request_body = NewClientBody,
    responses((status = 201, description = "success", body = NewClientAnswer)),
    security(("administrator" = []))
)]
pub async fn create_client(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewClientBody>,
) -> Result<(StatusCode, Json<NewClientAnswer>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let (client, token) = state
        .licensing
        .create_client(&actor, &body.id, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewClientAnswer {
            client: client.into(),
            token,
        }),
    ))
}

/// `GET /v1/admin/clients`: a page of clients, by identifier.
#[utoipa::path(
    get,
    path = "/v1/admin/clients",
    summary = "A page of client accounts, by identifier",
    params(PageQuery),
    responses((status = 200, description = "success", body = Vec<ClientRecordBody>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn clients(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<PageAnswer<ClientRecordBody>, AppError> {
    let page = query.page()?;
    let clients = state.licensing.clients_page(&page).await?;
    Ok(PageAnswer(clients.map(Into::into)))
}

/// `GET /v1/admin/clients/{id}`.
#[utoipa::path(
    get,
    path = "/v1/admin/clients/{id}",
    summary = "One client account",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn client(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientRecordBody>, AppError> {
    Ok(Json(state.licensing.client(&id).await?.into()))
}

/// `POST /v1/admin/clients/{id}/token`: replaces the client's token.
#[utoipa::path(
    post,
    path = "/v1/admin/clients/{id}/token",
    summary = "Replace a client's token (shown once)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = TokenBody)),
    security(("administrator" = []))
)]
pub async fn rotate_client_token(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let token = state.licensing.rotate_client_token(&actor, &id).await?;
    Ok(Json(TokenBody { token }))
}

/// `POST /v1/admin/clients/{id}/password` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Password)]
pub struct PasswordBody {
    /// The client's new password for the client interface (10 to 256 characters).
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

/// `POST /v1/admin/clients/{id}/password`: sets the client's password of the client interface
/// (hashed with argon2id and a random salt); audited.
#[utoipa::path(
    post,
    path = "/v1/admin/clients/{id}/password",
    summary = "Set a client's password of the client interface (hashed with argon2id)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    request_body = PasswordBody,
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn set_client_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<ClientRecordBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    state
        .licensing
        .set_client_password(&actor, &id, Some(&body.password))
        .await?;
    Ok(Json(state.licensing.client(&id).await?.into()))
}

/// `DELETE /v1/admin/clients/{id}/password`: removes the client's password (it then signs in
/// with its token only); audited.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{id}/password",
    summary = "Remove a client's password (it signs in with its token only)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn clear_client_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientRecordBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    state
        .licensing
        .set_client_password(&actor, &id, None)
        .await?;
    Ok(Json(state.licensing.client(&id).await?.into()))
}
