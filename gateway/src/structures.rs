//! Structures: an ambito publishes its services and accommodation with their free places; any
//! party searches them (how the partners find a free bed in winter).

use crate::problem::ApiError;
use crate::registry::Party;
use crate::state::AppState;
use crate::store::Read;
use crate::store::keys;
use raccordo_schemas::{Entity, Structure, codelist};
use serde_json::Value;

/// Stores a structure; returns it, whether it is new, and the ticket to await before answering.
pub fn publish(
    state: &AppState,
    caller: &Party,
    id: &str,
    body: &Value,
) -> Result<(Structure, bool, crate::store::Ticket), ApiError> {
    raccordo_schemas::validate(Entity::Structure, body).map_err(ApiError::schema)?;
    let structure: Structure =
        serde_json::from_value(body.clone()).map_err(|_| ApiError::Internal)?;
    if structure.id != id {
        return Err(ApiError::violation(
            "id-mismatch",
            "The structure id differs from the one in the path",
            "/id",
            "x-path",
            "the id in the body must equal the id in the path",
        ));
    }
    if structure.ambito != caller.id {
        return Err(ApiError::Forbidden {
            code: "not-owner",
            message: format!(
                "/ambito must be the calling party ('{}'): an ambito publishes only its own structures",
                caller.id
            ),
        });
    }
    let key = keys::structure(&structure.ambito, &structure.id);
    let (existed, ticket) = state.store.write(|txn| -> Result<bool, ApiError> {
        let existed = txn.get::<Structure>(&key)?.is_some();
        txn.put(&key, &structure)?;
        Ok(existed)
    })?;
    Ok((structure, !existed, ticket))
}

/// Search filters; each must be a code of its list when given.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub service_type: Option<String>,
    pub target_group: Option<String>,
    pub ambito: Option<String>,
    /// Only structures with at least one free place.
    #[serde(default)]
    pub available: bool,
}

fn check_code(list: &str, parameter: &'static str, value: &Option<String>) -> Result<(), ApiError> {
    if let Some(v) = value {
        let known = codelist::get(list).is_some_and(|l| l.codes.iter().any(|c| &c.code == v));
        if !known {
            return Err(ApiError::BadParameter {
                parameter,
                message: format!("not a code of the {list} list"),
            });
        }
    }
    Ok(())
}

pub fn search(state: &AppState, q: &Query) -> Result<Vec<Structure>, ApiError> {
    check_code("service-type", "service_type", &q.service_type)?;
    check_code("target-group", "target_group", &q.target_group)?;
    let all: Vec<(Vec<u8>, Structure)> =
        state
            .store
            .scan(&keys::structure_prefix(), None, usize::MAX)?;
    Ok(all
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| q.service_type.as_ref().is_none_or(|t| &s.service_type == t))
        .filter(|s| {
            q.target_group
                .as_ref()
                .is_none_or(|g| s.target_groups.contains(g))
        })
        .filter(|s| q.ambito.as_ref().is_none_or(|a| &s.ambito == a))
        .filter(|s| !q.available || s.capacity.as_ref().is_some_and(|c| c.free_places > 0))
        .collect())
}
