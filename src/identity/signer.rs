//! What a writer attests its changes with: its own certificate (an author
//! attestation), or a relay's certificate on a device's behalf (a delivery
//! attestation for a REST or classic write made for an authenticated token).

use std::sync::Arc;

use automerge::ChangeHash;

use super::attestation::Attestation;
use super::authority::{Authorization, Verification};
use super::certificate::Certificate;
use super::key::NodeKey;
use super::role::RoleSet;

/// Signs the changes of one writer.
#[derive(Clone)]
pub struct Signer {
    key: Arc<NodeKey>,
    serial: u64,
    /// `Some((device, roles, person))` when attesting on a device's behalf.
    on_behalf: Option<(String, RoleSet, Option<String>)>,
    /// Who the writes will be judged as, for the check before writing.
    acting: Authorization,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("serial", &self.serial)
            .field("acting", &self.acting)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A writer signing with its own certificate `cert` (whose key is `key`).
    pub fn author(key: Arc<NodeKey>, cert: &Certificate) -> Signer {
        Signer {
            key,
            serial: cert.serial,
            on_behalf: None,
            acting: Authorization {
                verification: Verification::Signed,
                device: Some(cert.device.clone()),
                person: cert.person.clone(),
                roles: cert.roles.clone(),
                serial: Some(cert.serial),
                refused: None,
            },
        }
    }

    /// A relay (`key`, certificate `relay`) attesting writes it makes for
    /// `device`, which holds `roles`.
    pub fn on_behalf(
        key: Arc<NodeKey>,
        relay: &Certificate,
        device: String,
        roles: RoleSet,
    ) -> Signer {
        Signer {
            key,
            serial: relay.serial,
            acting: Authorization {
                verification: Verification::RelayAttested,
                device: Some(device.clone()),
                person: None,
                roles: roles.clone(),
                serial: Some(relay.serial),
                refused: None,
            },
            on_behalf: Some((device, roles, None)),
        }
    }

    /// The same signer, naming `person` (the token's) in what it attests on
    /// a device's behalf; nothing changes for an author's own signer.
    pub fn for_person(mut self, person: Option<String>) -> Signer {
        if let Some((_, _, p)) = &mut self.on_behalf {
            p.clone_from(&person);
            self.acting.person = person;
        }
        self
    }

    /// The attestation of `change`.
    pub fn attest(&self, change: ChangeHash) -> Attestation {
        match &self.on_behalf {
            None => Attestation::author(change, self.serial, &self.key),
            Some((device, roles, person)) => Attestation::delivery_by(
                change,
                self.serial,
                device.clone(),
                person.clone(),
                roles.clone(),
                &self.key,
            ),
        }
    }

    /// The public key the attestations verify with.
    pub fn public_key(&self) -> super::key::PublicKey {
        self.key.public()
    }

    /// Who the writes will be judged as.
    pub fn acting(&self) -> &Authorization {
        &self.acting
    }
}
