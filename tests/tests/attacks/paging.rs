//! Family 7: page links. An attacker pages a search forwards (`next`) and back again
//! (`previous`, `first`) and sees on every page only what a first page would show; another
//! client's `next` and `previous` links (the engine's sealed `_page` states, or through a remote
//! target the gateway's sealed `_getpages` states) are gone (410) for the attacker, never a page
//! of someone else's search; so are the links of the attacker's own break-glass search when
//! followed without break-glass.

use fhirgate_e2e::TestResult;
use serde_json::Value;

use super::scene::{Scene, ensure};
use super::world::World;

pub fn run(scene: &Scene, world: &World) {
    for &hide in &world.hides {
        let way = hide.label();
        let code = format!("paged-{way}");
        // More hidden matches after the attacker's last one than a chunk of pages holds (ids sort
        // `hid-` < `vis-` < `zz-`): the page after the last visible one would show none of them.
        let seeded = super::counts::seed(scene, world, hide, &code).and_then(|()| {
            (0..11).try_for_each(|i| {
                super::world::hidden_observation(scene, hide, &format!("zz-hid-n-{way}-{i:02}"), &code).map(drop)
            })
        });
        if let Err(e) = seeded {
            scene.case(format!("paging/{way}: seeding"), || Err(e));
            continue;
        }
        let search = format!("Observation?code=urn:attack|{code}&_count=1");
        let visible = [format!("Observation/vis-n-{way}-1"), format!("Observation/vis-n-{way}-2")];
        scene.case(format!("paging/{way}: next, previous and first show only what the attacker sees"), || {
            let w = &world.attacker;
            let forward = walk(scene, Some(w), &search, "next")?;
            // A next link leads to a match the attacker sees, never to a page of hidden ones only
            // (which would say they exist): on a local store and through a remote target alike.
            let shown: Vec<Vec<String>> = forward.iter().map(ids).collect();
            ensure!(shown.iter().all(|page| !page.is_empty()), "an empty page: {shown:?}");
            let mut seen: Vec<String> = forward.iter().flat_map(ids).collect();
            seen.sort();
            ensure!(seen == visible, "forward pages: {seen:?}");
            let last = forward.last().ok_or("no page")?;
            let back = match link(last, "previous") {
                Some(previous) => walk(scene, Some(w), &previous, "previous")?,
                None => Vec::new(),
            };
            let mut again: Vec<String> = back.iter().flat_map(ids).collect();
            again.sort();
            let before_last: Vec<String> = forward[..forward.len() - 1].iter().flat_map(ids).collect();
            let mut before_last = before_last;
            before_last.sort();
            ensure!(again == before_last, "previous pages: {again:?}, the pages before the last: {before_last:?}");
            if let Some(first) = link(last, "first") {
                let page = get(scene, Some(w), &first)?;
                ensure!(ids(&page) == ids(&forward[0]), "first: {:?} vs {:?}", ids(&page), ids(&forward[0]));
            }
            Ok(())
        });
        if way == "restricted" {
            scene.case(format!("paging/{way}: a break-glass search's links are gone without break-glass"), || {
                let glass = [("X-Break-Glass", "attack suite emergency")];
                let r = scene.s.send_as(Some(&world.attacker), "GET", &search, None, &glass)?;
                ensure!(r.status == 200, "the break-glass search: {} {}", r.status, r.body);
                let next = link(&r.json()?, "next").ok_or("a break-glass search of several pages has a next link")?;
                let path = next.strip_prefix(&scene.s.base()).unwrap_or(&next).trim_start_matches('/').to_string();
                let r = scene.s.send_as(Some(&world.attacker), "GET", &path, None, &[])?;
                scene.no_leak(&format!("{path} without break-glass"), &r, &world.attacker)?;
                ensure!(r.status == 410, "the break-glass page answered without break-glass {}: {}", r.status, r.body);
                Ok(())
            });
        }
        scene.case(format!("paging/{way}: another client's next and previous links are gone"), || {
            let pages = walk(scene, None, &search, "next")?;
            let mut links: Vec<String> = pages.iter().filter_map(|p| link(p, "next")).take(2).collect();
            links.extend(pages.iter().filter_map(|p| link(p, "previous")).filter(|l| is_page_link(l)).take(2));
            ensure!(links.len() >= 3, "the seer's search has page links: {links:?}");
            for url in links {
                let path = url.strip_prefix(&scene.s.base()).unwrap_or(&url).trim_start_matches('/').to_string();
                let r = scene.s.send_as(Some(&world.attacker), "GET", &path, None, &[])?;
                scene.no_leak(&format!("the seer's {path}"), &r, &world.attacker)?;
                ensure!(r.status == 410, "the seer's page link answered the attacker {}: {}", r.status, r.body);
            }
            Ok(())
        });
    }
}

/// A link that continues a search (an engine `_page` or a gateway `_getpages` state), not
/// the search's own URL.
fn is_page_link(url: &str) -> bool {
    url.contains("_page=") || url.contains("_getpages=")
}

/// The pages from `start` following `relation` as the attacker `token` (each checked for leaks)
/// or, with `None`, as the seer (at most 20).
fn walk(scene: &Scene, token: Option<&str>, start: &str, relation: &str) -> TestResult<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = start.to_string();
    for _ in 0..20 {
        let page = get(scene, token, &url)?;
        let following = link(&page, relation);
        pages.push(page);
        match following {
            Some(next) => url = next,
            None => return Ok(pages),
        }
    }
    Err(format!("more than 20 pages following `{relation}` from {start}").into())
}

/// One page, as the attacker `token` (checked for leaks) or, with `None`, as the seer.
fn get(scene: &Scene, token: Option<&str>, url: &str) -> TestResult<Value> {
    let path = url.strip_prefix(&scene.s.base()).unwrap_or(url).trim_start_matches('/').to_string();
    let r = scene.s.send_as(Some(token.unwrap_or(&scene.seer)), "GET", &path, None, &[])?;
    if let Some(token) = token {
        scene.no_leak(&path, &r, token)?;
    }
    ensure!(r.status == 200, "{path}: {} {}", r.status, r.body);
    r.json()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == relation)?["url"].as_str().map(str::to_string)
}

/// `Type/id` of the page's matches.
fn ids(bundle: &Value) -> Vec<String> {
    let entries = bundle["entry"].as_array().map_or(&[][..], Vec::as_slice);
    entries
        .iter()
        .filter(|e| e["search"]["mode"] != "outcome")
        .filter_map(|e| Some(format!("{}/{}", e["resource"]["resourceType"].as_str()?, e["resource"]["id"].as_str()?)))
        .collect()
}
