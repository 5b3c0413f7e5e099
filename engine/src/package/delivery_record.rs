//! `delivery.json`, beside the local manifest of a snapshot delivered to S3: where it
//! went and every object uploaded, with its size. Written only after the remote
//! manifest's upload succeeded, so the catalog can tell a delivered snapshot (complete)
//! from one whose parts simply are not on local disk (failed).

use serde::{Deserialize, Serialize};

use super::Manifest;

pub const DELIVERY_RECORD: &str = "delivery.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `s3://bucket/prefix/<id>/`.
    pub url: String,
    /// Every part and loose file, as uploaded (the manifest is not listed).
    pub objects: Vec<DeliveredObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveredObject {
    pub name: String,
    pub bytes: u64,
}

impl DeliveryRecord {
    /// The objects a delivery of `manifest` uploaded: its parts and its loose files.
    pub fn new(url: &str, manifest: &Manifest) -> DeliveryRecord {
        let parts = manifest.archives.iter().map(|a| DeliveredObject { name: a.name.clone(), bytes: a.bytes });
        let loose = manifest
            .resources
            .iter()
            .flat_map(|r| &r.files)
            .filter(|f| f.archive.is_none())
            .map(|f| DeliveredObject { name: f.path.clone(), bytes: f.bytes });
        DeliveryRecord { url: url.into(), objects: parts.chain(loose).collect() }
    }
}
