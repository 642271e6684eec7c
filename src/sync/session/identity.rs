//! The identity extension on a session (`identity_ext.rs`): enrolling a
//! peer after the handshake (on a tenant authority), taking certificates,
//! revocation lists and role tables, and sending each change's attestations
//! before the sync message that carries it, so the receiver judges it once.

use std::collections::BTreeMap;

use automerge::ChangeHash;

use super::{Output, Role, Session};
use crate::error::Error;
use crate::identity::{AttestationKind, SignedRevocationList, SignedRoleTable};
use crate::model::{EntityId, DEFAULT_TENANT};
use crate::store::CertificateRequest;
use crate::sync::identity_ext::{self, AttestNews, IdentityNews};
use crate::sync::storage::SyncStore;
use crate::wire;

/// Most documents whose attestations a session holds before their changes
/// arrive; more are dropped (the peer sends them again with the changes).
const MAX_STASHED_DOCS: usize = 256;

impl<S: SyncStore> Session<S> {
    /// Whether the peer speaks the identity extension.
    fn identity_peer(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| r.ext.identity)
    }

    /// After the handshake: a server that is the authority of the
    /// connection's tenant certifies the peer's announced key; both sides
    /// send the revocation list and the role table they hold.
    pub(super) fn identity_hello(
        &mut self,
        peer_key: Option<crate::identity::PublicKey>,
        out: &mut Output,
    ) -> Result<(), Error> {
        if !self.identity_peer() {
            return Ok(());
        }
        let access = &self.cfg.access;
        let tenant = match self.cfg.role {
            Role::Server if access.tenant != DEFAULT_TENANT => Some(access.tenant.clone()),
            _ => match self.store.home_tenant()? {
                Some(home) => Some(home),
                // a server, or a client that is its tenant's authority
                // (it has revocation lists and attestations to pass on)
                None if self.cfg.role == Role::Server || self.store.judges(&access.tenant)? => {
                    Some(access.tenant.clone())
                }
                None => None,
            },
        };
        let Some(tenant) = tenant else {
            return Ok(()); // a client that never enrolled: it learns its tenant
        };
        self.identity.tenant = Some(tenant.clone());
        let mut news = IdentityNews {
            tenant: tenant.clone(),
            ..IdentityNews::default()
        };
        if let (Role::Server, Some(key)) = (self.cfg.role, peer_key) {
            let req = CertificateRequest {
                tenant: tenant.clone(),
                device: access.device.clone(),
                person: access.person.clone(),
                roles: access.effective_roles(),
                public_key: key,
            };
            if let Some((authority, cert, own)) = self.store.certify(&req)? {
                news.authority = Some(authority);
                news.certificate = Some(cert);
                self.identity.sent_serials.insert(own.certificate.serial);
                news.certificates.push(own);
            }
        }
        news.revocation_list = self.fresh_revocations(&tenant)?;
        news.role_table = self.fresh_role_table(&tenant)?;
        self.send_extension(out, |from, to| identity_ext::identity(from, to, &news));
        Ok(())
    }

    /// The role table of `tenant` when the peer may lack it (this
    /// connection has neither sent it nor received it).
    fn fresh_role_table(&mut self, tenant: &str) -> Result<Option<SignedRoleTable>, Error> {
        let table = self.store.role_table(tenant)?;
        Ok(match table {
            Some(t) if self.identity.sent_role_table.as_ref() != Some(&t) => {
                self.identity.sent_role_table = Some(t.clone());
                Some(t)
            }
            _ => None,
        })
    }

    /// The revocation list of `tenant` when newer than the one sent.
    fn fresh_revocations(&mut self, tenant: &str) -> Result<Option<SignedRevocationList>, Error> {
        let list = self.store.revocation_list(tenant)?;
        Ok(match list {
            Some(l) if l.list.version > self.identity.sent_revocations => {
                self.identity.sent_revocations = l.list.version;
                Some(l)
            }
            _ => None,
        })
    }

    pub(super) fn on_identity(
        &mut self,
        body: &BTreeMap<String, wire::Value>,
    ) -> Result<Output, Error> {
        let Some(news) = identity_ext::parse_identity(body) else {
            return Ok(self.fail("malformed permitsync-identity".into()));
        };
        if !self.accepts_tenant(&news.tenant)? {
            tracing::debug!(tenant = %news.tenant, "identity news of another tenant ignored");
            return Ok(Output::default());
        }
        // only the node we dialed (a relay) enrolls us, never a client
        if let (Role::Client, Some(authority), Some(cert)) =
            (self.cfg.role, news.authority, &news.certificate)
        {
            match self.store.enroll(&news.tenant, authority, cert) {
                Ok(first) => {
                    if first {
                        tracing::info!(tenant = %news.tenant, "enrolled with the tenant authority");
                    }
                }
                Err(Error::InvalidInput(why)) => {
                    tracing::warn!(tenant = %news.tenant, %why, "enrollment refused");
                }
                Err(e) => return Err(e),
            }
        }
        self.identity.tenant.get_or_insert(news.tenant.clone());
        self.store
            .learn_certificates(&news.tenant, &news.certificates)?;
        let mut out = Output::default();
        if let Some(list) = &news.revocation_list {
            out.identity_changed = self.learn_revocations(&news.tenant, list)?;
        }
        if let Some(table) = &news.role_table {
            // the peer holds it: not sent back, whether it was news or not
            // (if this node holds a table that supersedes it, it sends that)
            let learnt = self.store.learn_role_table(&news.tenant, table)?;
            if learnt || self.identity.sent_role_table.is_none() {
                self.identity.sent_role_table = Some(table.clone());
            }
            out.identity_changed |= learnt;
        }
        Ok(out)
    }

    /// Learn a revocation list the peer sent; whether it was news. The peer
    /// holds it, so it is not sent back.
    fn learn_revocations(
        &mut self,
        tenant: &str,
        list: &SignedRevocationList,
    ) -> Result<bool, Error> {
        let news = self.store.learn_revocation_list(tenant, list)?;
        if news {
            self.identity.sent_revocations = self.identity.sent_revocations.max(list.list.version);
        }
        Ok(news)
    }

    /// The node learnt a newer revocation list or role table elsewhere
    /// (another connection, or its own authority revoked a device or signed
    /// a new table): send it on, so it reaches every replica without waiting
    /// for a reconnect.
    pub fn on_identity_changed(&mut self) -> Output {
        let mut out = Output::default();
        if !self.identity_peer() {
            return out;
        }
        let Some(tenant) = self.identity.tenant.clone() else {
            return out;
        };
        let revocation_list = self.fresh_revocations(&tenant).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "revocation list not read");
            None
        });
        let role_table = self.fresh_role_table(&tenant).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "role table not read");
            None
        });
        if revocation_list.is_some() || role_table.is_some() {
            let news = IdentityNews {
                tenant,
                revocation_list,
                role_table,
                ..IdentityNews::default()
            };
            self.send_extension(&mut out, |from, to| identity_ext::identity(from, to, &news));
        }
        out
    }

    /// Whether news about `tenant` concerns this connection: the tenant of
    /// its token on a server; on a client, the tenant it enrolled with (or
    /// any, before it enrolled).
    fn accepts_tenant(&self, tenant: &str) -> Result<bool, Error> {
        if let Some(t) = &self.identity.tenant {
            return Ok(t == tenant);
        }
        Ok(match self.cfg.role {
            Role::Server => self.cfg.access.tenant == tenant,
            Role::Client => self.store.home_tenant()?.is_none_or(|h| h == tenant),
        })
    }

    pub(super) fn on_attest(
        &mut self,
        body: &BTreeMap<String, wire::Value>,
    ) -> Result<Output, Error> {
        let Some(news) = identity_ext::parse_attest(body) else {
            return Ok(self.fail("malformed permitsync-attest".into()));
        };
        if !self.accepts_tenant(&news.tenant)? {
            return Ok(Output::default());
        }
        self.store
            .learn_certificates(&news.tenant, &news.certificates)?;
        let mut out = Output::default();
        if let Some(list) = &news.revocation_list {
            out.identity_changed = self.learn_revocations(&news.tenant, list)?;
        }
        let id = news.doc;
        let visible =
            self.store.contains(id)? && self.store.visible_to(id, &self.cfg.access.tenant)?;
        if visible && !self.cfg.access.read_only {
            self.store.add_attestations(id, news.attestations)?;
        } else if !self.cfg.access.read_only
            && (self.identity.stashed.len() < MAX_STASHED_DOCS
                || self.identity.stashed.contains_key(&id))
        {
            // before the changes that create the document: kept until the
            // document is admitted (`take_stashed`)
            let held = self.identity.stashed.entry(id).or_default();
            let room = identity_ext::MAX_ATTESTATIONS.saturating_sub(held.len());
            held.extend(news.attestations.into_iter().take(room));
        }
        Ok(out)
    }

    /// Store the attestations received for `id` before it was admitted.
    pub(super) fn take_stashed(&mut self, id: EntityId) -> Result<(), Error> {
        if let Some(atts) = self.identity.stashed.remove(&id) {
            self.store.add_attestations(id, atts)?;
        }
        Ok(())
    }

    /// Before a sync message about `id` carrying `sent` changes: their
    /// attestations, with the certificates they name that this connection
    /// has not carried yet.
    pub(super) fn attest_sent(
        &mut self,
        id: EntityId,
        sent: &[ChangeHash],
        only_delivery: bool,
        out: &mut Output,
    ) -> Result<(), Error> {
        if sent.is_empty() || !self.identity_peer() {
            return Ok(());
        }
        let Some(tenant) = self.identity.tenant.clone() else {
            return Ok(());
        };
        let mut attestations = self.store.attestations_of_changes(id, sent)?;
        if only_delivery {
            attestations.retain(|a| matches!(a.kind, AttestationKind::Delivery { .. }));
        }
        if attestations.is_empty() {
            return Ok(());
        }
        let new_serials: Vec<u64> = attestations
            .iter()
            .map(|a| a.serial)
            .filter(|s| !self.identity.sent_serials.contains(s))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let certificates = self.store.certificates(&tenant, &new_serials)?;
        self.identity.sent_serials.extend(new_serials);
        let news = AttestNews {
            doc: id,
            tenant: tenant.clone(),
            attestations,
            certificates,
            revocation_list: self.fresh_revocations(&tenant)?,
        };
        for chunk in news.attestations.chunks(identity_ext::MAX_ATTESTATIONS) {
            let part = AttestNews {
                attestations: chunk.to_vec(),
                ..news.clone()
            };
            self.send_extension(out, |from, to| identity_ext::attest(from, to, &part));
        }
        Ok(())
    }

    fn send_extension(
        &self,
        out: &mut Output,
        make: impl FnOnce(&crate::wire::PeerId, &crate::wire::PeerId) -> wire::Message,
    ) {
        if let Some(remote) = &self.remote {
            out.send.push(make(&self.cfg.local_peer, &remote.peer));
        }
    }
}
