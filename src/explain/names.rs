//! Output names for a list of input images: each image's file stem, made
//! longer only where two inputs would otherwise share a name.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// One distinct name per path, for `NAME.gradcam.png` and friends: the file
/// stem (`cat` for `a/cat.png`); where stems collide, the file name with its
/// extension (`cat_png`, `cat_jpg`); where those collide too, preceded by as
/// many parent folders as it takes (`a_cat_png`, `b_cat_png`); and a `-N`
/// suffix where even the whole paths give one name. Names compare
/// case-insensitively, as on case-insensitive file systems.
pub fn output_stems(paths: &[PathBuf]) -> Vec<String> {
    let candidates: Vec<Vec<String>> = paths.iter().map(|p| candidates(p)).collect();
    let mut level = vec![0usize; paths.len()];
    loop {
        let names: Vec<&String> = candidates.iter().zip(&level).map(|(c, &l)| &c[l]).collect();
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            groups.entry(n.to_lowercase()).or_default().push(i);
        }
        let mut lengthened = false;
        for members in groups.values().filter(|m| m.len() > 1) {
            for &i in members {
                if level[i] + 1 < candidates[i].len() {
                    level[i] += 1;
                    lengthened = true;
                }
            }
        }
        if !lengthened {
            return numbered(names.into_iter().cloned().collect());
        }
    }
}

/// A path's names, shortest first: stem, file name, then one more parent
/// folder in front each time ('.' and ' ' become '_').
fn candidates(path: &Path) -> Vec<String> {
    let clean = |s: &str| s.replace(['.', ' '], "_");
    let file = path.file_name().map_or_else(|| "image".to_string(), |f| f.to_string_lossy().into_owned());
    let stem = path.file_stem().map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
    let mut out = vec![clean(&stem), clean(&file)];
    let parents: Vec<String> = path
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .filter_map(|c| match c {
            Component::Normal(s) => Some(clean(&s.to_string_lossy())),
            _ => None,
        })
        .collect();
    for parent in parents.iter().rev() {
        let longer = format!("{parent}_{}", out[out.len() - 1]);
        out.push(longer);
    }
    out
}

/// Appends `-2`, `-3`, … to names that are still equal, skipping any suffix another name already has.
fn numbered(names: Vec<String>) -> Vec<String> {
    let mut taken: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let mut first: HashSet<String> = HashSet::new();
    names
        .into_iter()
        .map(|n| {
            if first.insert(n.to_lowercase()) {
                return n;
            }
            let mut k = 2;
            while taken.contains(&format!("{n}-{k}").to_lowercase()) {
                k += 1;
            }
            let renamed = format!("{n}-{k}");
            taken.insert(renamed.to_lowercase());
            renamed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::output_stems;
    use std::path::PathBuf;

    fn stems(paths: &[&str]) -> Vec<String> {
        output_stems(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn names_grow_only_where_they_collide() {
        assert_eq!(stems(&["d/a/cat.png", "d/b/dog.png"]), ["cat", "dog"]);
        assert_eq!(stems(&["d/cat.png", "d/Cat.jpg", "dog.png"]), ["cat_png", "Cat_jpg", "dog"]);
        assert_eq!(stems(&["d/a/cat.png", "d/b/cat.png", "e/a/x.png"]), ["a_cat_png", "b_cat_png", "x"]);
        assert_eq!(stems(&["x/my scan.v2.png"]), ["my_scan_v2"]);
        // The same path twice (as given on a command line), and a name that looks like a suffix.
        assert_eq!(stems(&["cat.png", "cat.png", "cat.png-2"]), ["cat_png", "cat_png-3", "cat_png-2"]);
    }
}
