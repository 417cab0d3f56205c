//! Protobuf request bodies -- real kubectl captures (`fixtures/protobuf/capture.py`) and protoc-encoded
//! objects (`fixtures/protobuf/protoc/make.py`) -- decode to the JSON Go writes for the same object
//! (for the kubectl ones: what kubectl prints with `--dry-run=client -o json`); no prefix or mutation panics.

use apiserver::protobuf::decode;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

fn fixtures() -> Vec<(String, Vec<u8>, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "pb") {
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            let body = std::fs::read(&path).expect("read fixture");
            out.push((name, body, path.with_extension("json")));
        }
    }
    out.sort();
    assert!(out.len() >= 6, "expected the captured kubectl fixtures");
    out
}

#[test]
fn fixture_bodies_decode_to_expected_json() {
    for (name, body, json_path) in fixtures() {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json_path).expect("expected json"))
                .expect("valid json");
        let got = decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
        // Same key order as Go writes it, too.
        assert_eq!(
            serde_json::to_string(&got).expect("json"),
            serde_json::to_string(&expected).expect("json"),
            "{name}"
        );
    }
}

#[test]
fn every_prefix_decodes_or_errors() {
    for (name, body, _) in fixtures() {
        for len in 0..body.len() {
            if let Err(e) = decode(&body[..len]) {
                assert!(e.code == 400 || e.code == 415, "{name}[..{len}]: {e}");
            }
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b387300);
    for (name, body, _) in fixtures() {
        for _ in 0..500 {
            let mut mutated = body.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(4..mutated.len());
                mutated[at] = rng.random();
            }
            if let Err(e) = decode(&mutated) {
                assert!(e.code == 400 || e.code == 415, "{name}: {e}");
            }
        }
    }
}
