//! `/items` and `/items/{id}`: public reads (through the read cache, with
//! `x-cache: hit|miss`), owner-or-admin writes.

use http::HeaderValue;

use super::open_migrated as open;
use crate::auth::{self, Principal};
use crate::cache;
use crate::error::{ApiError, FieldError, db_failure};
use crate::http::{ApiRequest, ApiResponse, json_text, no_content};
use crate::items::{Item, NewItem};
use crate::platform::{KeyValueStore, Platform};
use crate::repository::items;
use crate::repository::users;
use crate::routes::Endpoint;
use crate::storage::{Database, DbError};
use crate::validation::{self, Completeness};
use crate::variables::token_keys as keys;

pub async fn handle<P: Platform>(
    platform: &P,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let (matched, authorization, query, body) = request.parts();

    match (matched.endpoint, matched.id) {
        (Endpoint::ListItems, _) => {
            let page = validation::page(query)?;
            let request = format!(
                "list:{}:{}:{:?}:{:?}",
                page.skip, page.limit, page.owner_id, page.order
            );
            cached(platform, &request, || async {
                let db = open(platform).await?;
                let page = items::list(&db, &page).await.map_err(db_failure)?;
                Ok(Some(Item::list_json(&page)))
            })
            .await
        }
        (Endpoint::GetItem, Some(id)) => {
            cached(platform, &format!("item:{id}"), || async {
                let db = open(platform).await?;
                let item = items::get(&db, id).await.map_err(db_failure)?;
                Ok(item.map(|i| i.to_json()))
            })
            .await
        }
        (
            endpoint @ (Endpoint::CreateItem
            | Endpoint::ReplaceItem
            | Endpoint::UpdateItem
            | Endpoint::DeleteItem),
            id,
        ) => {
            let db = open(platform).await?;
            let keys = keys(platform.variables()).await?;
            let caller = auth::authenticate(&db, &keys, authorization.as_deref()).await?;
            if endpoint != Endpoint::DeleteItem && !request.is_json() {
                return Err(ApiError::UnsupportedMediaType);
            }
            let response = write(&db, &caller, endpoint, id, body).await?;
            // Committed: every cached read from before is now out of date.
            new_generation(platform).await;
            Ok(response)
        }
        // Another component's route: spin.toml never sends it here.
        _ => Err(ApiError::NotFound("Not Found")),
    }
}

/// A read through the cache (`x-cache: hit|miss`). `load` gives the body, or
/// `None` for 404. Any cache failure only costs the hit: the read still
/// goes to the database.
async fn cached<P, F, Fut>(platform: &P, request: &str, load: F) -> Result<ApiResponse, ApiError>
where
    P: Platform,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<String>, ApiError>>,
{
    let store = platform.open_key_value().await.ok();
    let generation = match &store {
        Some(store) => match store.get(cache::GENERATION_KEY).await {
            Ok(value) => Some(
                value
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default(),
            ),
            Err(_) => None,
        },
        None => None,
    };
    let slot = cache::slot_key(request);
    if let (Some(store), Some(generation)) = (&store, &generation)
        && let Ok(Some(bytes)) = store.get(&slot).await
        && let Some(body) = cache::Entry::hit(&bytes, generation, request)
    {
        return Ok(with_cache_header(json_text(200, body), "hit"));
    }
    let body = load().await?.ok_or(ApiError::NotFound("Item not found"))?;
    if let (Some(store), Some(generation)) = (&store, generation) {
        let entry = cache::Entry {
            generation,
            request: request.to_string(),
            body: body.clone(),
        };
        let _ = store.set(&slot, &entry.encode()).await;
    }
    Ok(with_cache_header(json_text(200, body), "miss"))
}

fn with_cache_header(mut response: ApiResponse, value: &'static str) -> ApiResponse {
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(value));
    response
}

/// Replaces the cache generation after a committed write.
async fn new_generation<P: Platform>(platform: &P) {
    let generation = uuid::Uuid::new_v4().simple().to_string();
    match platform.open_key_value().await {
        Ok(store) => {
            if let Err(e) = store
                .set(cache::GENERATION_KEY, generation.as_bytes())
                .await
            {
                eprintln!("items: cache generation not replaced: {e}");
            }
        }
        Err(e) => eprintln!("items: cache unavailable: {e}"),
    }
}

async fn write<D: Database>(
    db: &D,
    caller: &Principal,
    endpoint: Endpoint,
    id: Option<i64>,
    body: &[u8],
) -> Result<ApiResponse, ApiError> {
    // A user deleted between `check_owner` and the write.
    let fk_violation = |e: DbError| match e {
        DbError::Other(m) if m.contains("23503") || m.contains("FOREIGN KEY") => owner_not_found(),
        e => db_failure(e),
    };
    match id {
        None => {
            let fields = validation::item(&validation::json_object(body)?, Completeness::Full)?;
            let owner_id = match fields.owner_id {
                Some(owner) if owner != caller.user_id && !caller.is_admin => {
                    return Err(ApiError::Forbidden("Not enough permissions"));
                }
                Some(owner) => owner,
                None => caller.user_id,
            };
            check_owner(db, owner_id, caller).await?;
            let item = items::create(
                db,
                NewItem {
                    name: fields.name.unwrap_or_default(),
                    description: fields.description.flatten(),
                    price: fields.price.ok_or(ApiError::Internal)?,
                    is_available: fields.is_available.unwrap_or(true),
                    owner_id,
                },
            )
            .await
            .map_err(fk_violation)?;
            let mut response = json_text(201, item.to_json());
            if let Ok(location) = format!("/items/{}", item.id).parse() {
                response.headers_mut().insert("location", location);
            }
            Ok(response)
        }
        Some(id) => {
            let existing = items::get(db, id)
                .await
                .map_err(db_failure)?
                .ok_or(ApiError::NotFound("Item not found"))?;
            if existing.owner_id != caller.user_id && !caller.is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            if endpoint == Endpoint::DeleteItem {
                items::delete(db, id).await.map_err(db_failure)?;
                return Ok(no_content());
            }
            let completeness = if endpoint == Endpoint::ReplaceItem {
                Completeness::Full
            } else {
                Completeness::Partial
            };
            let mut fields = validation::item(&validation::json_object(body)?, completeness)?;
            if fields.owner_id.is_some_and(|o| o != existing.owner_id) && !caller.is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            if let Some(owner) = fields.owner_id {
                check_owner(db, owner, caller).await?;
            }
            if completeness == Completeness::Full && fields.description.is_none() {
                // A full replacement without a description clears it.
                fields.description = Some(None);
            }
            let item = items::update(db, id, &fields)
                .await
                .map_err(fk_violation)?
                .ok_or(ApiError::NotFound("Item not found"))?;
            Ok(json_text(200, item.to_json()))
        }
    }
}

fn owner_not_found() -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        "owner_not_found",
        &["body", "owner_id"],
        "No user has this id",
        None,
    )])
}

/// 422 `owner_not_found` unless `owner` is the caller or an existing user.
/// Checked here rather than left to the foreign key: SQLite enforces none
/// unless asked, and both backends must refuse an unknown owner alike.
async fn check_owner<D: Database>(db: &D, owner: i64, caller: &Principal) -> Result<(), ApiError> {
    if owner == caller.user_id {
        return Ok(());
    }
    match users::get(db, owner).await.map_err(db_failure)? {
        Some(_) => Ok(()),
        None => Err(owner_not_found()),
    }
}
