//! `Site` and `Level` names: the strings manifests already hold, both ways, and clear refusals.

use plmscope_store::{Level, Site};

#[test]
fn site_names_are_the_manifest_strings_in_every_form() {
    let names = ["resid_post", "mlp_in", "mlp_out", "block_delta"];
    for (site, name) in Site::ALL.into_iter().zip(names) {
        assert_eq!(site.to_string(), name);
        assert_eq!(name.parse::<Site>().unwrap(), site);
        // serde must write exactly what manifests hold today, or old sets stop opening.
        assert_eq!(serde_json::to_string(&site).unwrap(), format!("\"{name}\""));
        let parsed: Site = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(parsed, site);
    }
}

#[test]
fn unknown_site_lists_the_valid_names() {
    let err = "resid_pre".parse::<Site>().unwrap_err();
    assert!(err.contains("resid_pre"), "{err}");
    for name in ["resid_post", "mlp_in", "mlp_out", "block_delta"] {
        assert!(err.contains(name), "{err}");
    }
    let err = serde_json::from_str::<Site>("\"ResidPost\"").unwrap_err();
    assert!(err.to_string().contains("block_delta"), "{err}");
}

#[test]
fn level_names_are_the_manifest_strings_in_every_form() {
    for (level, name) in [(Level::Residue, "residue"), (Level::Protein, "protein")] {
        assert_eq!((level.name(), level.to_string()), (name, name.to_string()));
        assert_eq!(name.parse::<Level>().unwrap(), level);
        assert_eq!(
            serde_json::to_string(&level).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(
            serde_json::from_str::<Level>(&format!("\"{name}\"")).unwrap(),
            level
        );
    }
    let err = "Residue".parse::<Level>().unwrap_err();
    assert!(err.contains("residue or protein"), "{err}");
}
