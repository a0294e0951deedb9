//! The registry of parties (ambiti and the Region), from configuration, and the mapping from a
//! presented client certificate to the party it identifies.

use crate::authorization::Role;
use crate::config::{AmbitoSettings, Config, PartyKind};
use crate::pki;
use std::collections::HashMap;
use std::sync::Arc;

/// A party of the network, as the gateway knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: String,
    pub name: String,
    pub kind: PartyKind,
    pub istat_code: String,
    pub signed_requests: crate::signature::SignaturePolicy,
    /// What the authorisation table knows the caller by.
    pub roles: Vec<Role>,
}

impl Party {
    /// A person signed in through the identity provider. They act for the Region, with the
    /// roles their token grants; `actor` is their keyed pseudonym, never the provider's subject.
    pub fn person(actor: String, name: String, roles: Vec<Role>) -> Party {
        Party {
            id: actor,
            name,
            kind: PartyKind::Region,
            istat_code: String::new(),
            signed_requests: crate::signature::SignaturePolicy::Optional,
            roles,
        }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    parties: HashMap<String, Arc<Party>>,
    by_fingerprint: HashMap<String, Arc<Party>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("ambito {party}: certificate {entry}: {reason}")]
    Certificate {
        party: String,
        entry: String,
        reason: String,
    },
    #[error("certificate {0} is listed for more than one party")]
    Shared(String),
}

impl Registry {
    pub fn load(config: &Config) -> Result<Registry, RegistryError> {
        Self::from_settings(&config.ambiti, |p| config.data_path(p))
    }

    pub fn from_settings(
        entries: &[AmbitoSettings],
        resolve: impl Fn(&str) -> std::path::PathBuf,
    ) -> Result<Registry, RegistryError> {
        let mut registry = Registry::default();
        for entry in entries {
            let party = Arc::new(Party {
                id: entry.id.clone(),
                name: entry.name.clone(),
                kind: entry.kind,
                istat_code: entry.istat_code.clone(),
                signed_requests: entry.signed_requests,
                roles: vec![match entry.kind {
                    PartyKind::Ambito => Role::Ambito,
                    PartyKind::Region => Role::Region,
                }],
            });
            for cert in &entry.certificates {
                let fingerprints = if let Some(hex) = cert.strip_prefix("sha256:") {
                    vec![format!("sha256:{}", hex.to_ascii_lowercase())]
                } else {
                    pki::load_certificates(&resolve(cert))
                        .map_err(|e| RegistryError::Certificate {
                            party: entry.id.clone(),
                            entry: cert.clone(),
                            reason: e.to_string(),
                        })?
                        .iter()
                        .take(1)
                        .map(|c| pki::fingerprint(c))
                        .collect()
                };
                for fp in fingerprints {
                    if registry
                        .by_fingerprint
                        .insert(fp.clone(), Arc::clone(&party))
                        .is_some()
                    {
                        return Err(RegistryError::Shared(fp));
                    }
                }
            }
            registry.parties.insert(entry.id.clone(), party);
        }
        Ok(registry)
    }

    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<Arc<Party>> {
        self.by_fingerprint.get(fingerprint).cloned()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Party>> {
        self.parties.get(id).cloned()
    }

    /// The ids of the ambiti (not the Region), sorted.
    pub fn ambito_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .parties
            .values()
            .filter(|p| p.kind == PartyKind::Ambito)
            .map(|p| p.id.clone())
            .collect();
        v.sort();
        v
    }

    pub fn is_ambito(&self, id: &str) -> bool {
        self.parties
            .get(id)
            .is_some_and(|p| p.kind == PartyKind::Ambito)
    }
}
