//! Content-addressed blobs (photo bytes), next to the documents that refer to
//! them. A blob is stored once whatever its number of references
//! (deduplicated by its SHA-256), readable by the tenants that uploaded or
//! received it, and wanted from peers while a document refers to it and the
//! node lacks it.

use sha2::{Digest, Sha256};

use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::Store;
use crate::error::{Error, Result};
use crate::model::EntityId;

/// A SHA-256 digest.
pub type Sha256Hash = [u8; 32];

/// Parse 64 hex digits.
pub fn parse_sha256(hex_digits: &str) -> Result<Sha256Hash> {
    let bytes = hex::decode(hex_digits).ok().filter(|b| b.len() == 32);
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        let quoted: String = hex_digits.chars().take(70).collect();
        Error::InvalidInput(format!("{quoted:?} is not a SHA-256 (64 hex digits)"))
    })
}

/// What [`Store::put_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPut {
    /// The blob is new here.
    Created,
    /// The node already had it (only the tenant's grant was added).
    Existing,
}

impl Store {
    /// Store `bytes` as the blob `sha` for `tenant`, durably, with the media
    /// type its bytes show ([`image_type`]). Refused when the bytes do not
    /// hash to `sha`, exceed `max_bytes`, or are not one of the
    /// [`IMAGE_TYPES`] (`Error::InvalidInput`, like a hash mismatch): a blob
    /// is a photo, never a page or a script.
    pub fn put_blob(
        &self,
        sha: &Sha256Hash,
        bytes: &[u8],
        tenant: &str,
        max_bytes: usize,
    ) -> Result<BlobPut> {
        if bytes.len() > max_bytes {
            return Err(Error::LimitExceeded(format!(
                "a blob of {} bytes; the limit is {max_bytes}",
                bytes.len()
            )));
        }
        let actual: Sha256Hash = Sha256::digest(bytes).into();
        if &actual != sha {
            return Err(Error::InvalidInput(format!(
                "the bytes hash to {}, not {}",
                hex::encode(actual),
                hex::encode(sha)
            )));
        }
        let Some(mime) = image_type(bytes) else {
            return Err(Error::InvalidInput(not_an_image()));
        };
        let existed = self.has_blob(sha)?;
        let mut batch = vec![
            (keys::blob_grant(tenant, sha), Some(Vec::new())),
            (keys::blob_wanted(tenant, sha), None),
        ];
        if !existed {
            batch.push((keys::blob(sha), Some(bytes.to_vec())));
            batch.push((keys::blob_mime(sha), Some(mime.as_bytes().to_vec())));
        }
        self.put_records(batch)?;
        Ok(if existed {
            BlobPut::Existing
        } else {
            BlobPut::Created
        })
    }

    /// Whether the node has the blob.
    pub fn has_blob(&self, sha: &Sha256Hash) -> Result<bool> {
        Ok(self.get_record(&keys::blob_mime(sha))?.is_some())
    }

    /// The blob and its media type, if `tenant` may read it.
    pub fn blob_for(&self, sha: &Sha256Hash, tenant: &str) -> Result<Option<(Vec<u8>, String)>> {
        if !self.blob_visible_to(sha, tenant)? {
            return Ok(None);
        }
        self.blob(sha)
    }

    /// The blob and its media type.
    pub(crate) fn blob(&self, sha: &Sha256Hash) -> Result<Option<(Vec<u8>, String)>> {
        let Some(bytes) = self.get_record(&keys::blob(sha))? else {
            return Ok(None);
        };
        let mime = self
            .get_record(&keys::blob_mime(sha))?
            .and_then(|m| String::from_utf8(m).ok())
            .unwrap_or_else(|| "application/octet-stream".into());
        Ok(Some((bytes, mime)))
    }

    /// Whether `tenant` may read the blob: it uploaded it, or received it for
    /// one of its documents. Blobs of documents nobody claimed belong to the
    /// default tenant.
    pub fn blob_visible_to(&self, sha: &Sha256Hash, tenant: &str) -> Result<bool> {
        Ok(self.get_record(&keys::blob_grant(tenant, sha))?.is_some())
    }

    /// The photo blobs document `id` refers to.
    pub fn photo_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>> {
        let hashes = self.with_doc(id, |d| crate::view::photo_hashes(d.history()))?;
        Ok(hashes.iter().filter_map(|h| parse_sha256(h).ok()).collect())
    }

    /// The tenant whose blobs document `id` holds (its owner).
    fn blob_tenant(&self, id: EntityId) -> Result<String> {
        Ok(self
            .owner(id)?
            .unwrap_or_else(|| DEFAULT_TENANT.to_string()))
    }

    /// The photo blobs of `id` its tenant may not read here yet (the node
    /// lacks them, or has them only for another tenant: bytes a tenant never
    /// had are fetched again, as proof that it has them); each is noted as
    /// wanted, across restarts, until it arrives.
    pub fn missing_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>> {
        let photos = self.photo_blobs(id)?;
        if photos.is_empty() {
            return Ok(Vec::new()); // most documents: no owner lookup on the sync path
        }
        let tenant = self.blob_tenant(id)?;
        let mut missing = Vec::new();
        let mut batch = Vec::new();
        for sha in photos {
            if !self.blob_visible_to(&sha, &tenant)? {
                let key = keys::blob_wanted(&tenant, &sha);
                if self.get_record(&key)?.is_none() {
                    batch.push((key, Some(id.as_bytes().to_vec())));
                }
                missing.push(sha);
            }
        }
        if !batch.is_empty() {
            self.put_records(batch)?;
        }
        Ok(missing)
    }

    /// The document that made `tenant` want blob `sha`, if it still does.
    pub fn wanted_by(&self, tenant: &str, sha: &Sha256Hash) -> Result<Option<EntityId>> {
        Ok(self
            .get_record(&keys::blob_wanted(tenant, sha))?
            .and_then(|v| keys::id_value(&v)))
    }

    /// Up to `limit` blobs `tenant` wants after `after`, with the document
    /// referring to each.
    pub fn wanted_blobs(
        &self,
        tenant: &str,
        after: Option<&Sha256Hash>,
        limit: usize,
    ) -> Result<Vec<(Sha256Hash, EntityId)>> {
        let prefix = keys::blob_wanted_prefix(tenant);
        let after = after.map(|sha| keys::blob_wanted(tenant, sha));
        Ok(self
            .scan_records(&prefix, after.as_deref(), limit)?
            .into_iter()
            .filter_map(|(k, v)| {
                let sha: Sha256Hash = k.get(prefix.len()..)?.try_into().ok()?;
                Some((sha, keys::id_value(&v)?))
            })
            .collect())
    }

    /// Store a blob received from a peer for document `id`: readable by the
    /// document's tenant.
    pub fn receive_blob(
        &self,
        id: EntityId,
        sha: &Sha256Hash,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<BlobPut> {
        let tenant = self.blob_tenant(id)?;
        self.put_blob(sha, bytes, &tenant, max_bytes)
    }
}

/// The media types a blob may have: the raster photos a field app produces.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heic"];

/// Why a blob was refused for its content.
pub fn not_an_image() -> String {
    format!(
        "a blob must be a photo ({}), decided by its bytes; this one is not",
        IMAGE_TYPES.join(", ")
    )
}

/// The media type `bytes` show by their leading magic number, if it is one of
/// [`IMAGE_TYPES`]; `None` for anything else (HTML, SVG, scripts, ...),
/// whatever a client claims in its `Content-Type`.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    // ISO base media file brands of HEIF images coded with HEVC
    const HEIC_BRANDS: [&[u8]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(PNG) {
        return Some("image/png");
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        // `ftyp` box: size, "ftyp", major brand, minor version, compatible brands
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let end = size.clamp(12, bytes.len().min(256));
        let major = &bytes[8..12];
        let compatible = bytes.get(16..end).unwrap_or_default().chunks_exact(4);
        let heic = |b: &[u8]| HEIC_BRANDS.contains(&b);
        let generic = major == b"mif1" || major == b"msf1";
        if heic(major) || (generic && compatible.clone().any(heic)) {
            return Some("image/heic");
        }
    }
    None
}

#[cfg(test)]
mod image_type_tests {
    use super::image_type;

    #[test]
    fn raster_photos_are_recognised_by_their_bytes() {
        assert_eq!(
            image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        assert_eq!(
            image_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(image_type(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert_eq!(image_type(heic), Some("image/heic"));
        let heif = b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic";
        assert_eq!(image_type(heif), Some("image/heic"));
    }

    #[test]
    fn anything_else_is_refused() {
        for bytes in [
            b"<!doctype html><script>alert(1)</script>".as_slice(),
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            b"<?xml version='1.0'?><svg/>",
            b"GIF89a",
            b"%PDF-1.7",
            b"",
            &[0xFF, 0xD8],
            b"RIFF\0\0\0\0WAVEfmt ",
            // AVIF: an ISO media file, but not HEIC
            b"\0\0\0\x18ftypavif\0\0\0\0mif1avif",
            b"\0\0\0\x18ftypmp42\0\0\0\0isommp42",
        ] {
            assert_eq!(image_type(bytes), None, "{bytes:?}");
        }
    }
}
