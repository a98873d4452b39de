//! Writing one incremental update (ISO 32000-1 §7.5.6): new and changed objects, then a
//! cross-reference section of the same kind as the previous one (table or stream), a trailer
//! with /Prev, `startxref` and `%%EOF`. The original bytes are never touched.

use crate::error::{Error, Result};
use crate::pdf::doc::Loaded;
use crate::pdf::syntax;
use lopdf::{Dictionary, Object};

/// One object of the update: number, generation and its serialised body (without `obj`).
#[derive(Debug, Clone)]
pub(crate) struct NewObject {
    pub id: u32,
    pub generation: u16,
    pub body: Vec<u8>,
}

/// The update as written: the full new file and where each object's body starts.
#[derive(Debug)]
pub(crate) struct Written {
    pub bytes: Vec<u8>,
    /// Object numbers in the order written (ascending).
    pub ids: Vec<u32>,
    pub body_offsets: Vec<usize>,
}

fn trailer_dict(loaded: &Loaded, size: u32) -> Dictionary {
    let mut t = Dictionary::new();
    t.set("Size", Object::Integer(i64::from(size)));
    for key in [&b"Root"[..], b"Info", b"ID"] {
        if let Ok(v) = loaded.doc.trailer.get(key) {
            t.set(key.to_vec(), v.clone());
        }
    }
    t.set(
        "Prev",
        Object::Integer(i64::try_from(loaded.startxref).unwrap_or(i64::MAX)),
    );
    t
}

/// Runs of consecutive object numbers: (first, count).
fn runs(ids: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some((first, count)) if first.checked_add(*count) == Some(id) => *count += 1,
            _ => out.push((id, 1)),
        }
    }
    out
}

/// Append `objects` to `original` as one incremental update.
pub(crate) fn write(
    original: &[u8],
    loaded: &Loaded,
    mut objects: Vec<NewObject>,
) -> Result<Written> {
    objects.sort_by_key(|o| o.id);
    if objects
        .windows(2)
        .any(|w| w.first().map(|o| o.id) == w.get(1).map(|o| o.id))
    {
        return Err(Error::Internal("object written twice in one update"));
    }
    let mut out = Vec::with_capacity(
        original.len() + objects.iter().map(|o| o.body.len() + 32).sum::<usize>() + 512,
    );
    out.extend_from_slice(original);
    if !out.ends_with(b"\n") && !out.ends_with(b"\r") {
        out.push(b'\n');
    }
    let mut offsets = Vec::with_capacity(objects.len());
    let mut body_offsets = Vec::with_capacity(objects.len());
    for o in &objects {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} {} obj\n", o.id, o.generation).as_bytes());
        body_offsets.push(out.len());
        out.extend_from_slice(&o.body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let max_id = objects.iter().map(|o| o.id).max().unwrap_or(0);
    let xref_offset = out.len();
    if loaded.xref_is_stream {
        // The cross-reference stream is itself an object of this update.
        let xref_id = max_id.max(loaded.size.saturating_sub(1)).saturating_add(1);
        let size = xref_id.saturating_add(1);
        let mut ids: Vec<u32> = objects.iter().map(|o| o.id).collect();
        ids.push(xref_id);
        let mut data = Vec::with_capacity(ids.len() * 7);
        let all_offsets = offsets.iter().copied().chain(std::iter::once(xref_offset));
        for ((o, off), id) in objects
            .iter()
            .map(|o| o.generation)
            .chain(std::iter::once(0))
            .zip(all_offsets)
            .zip(&ids)
        {
            let off32 = u32::try_from(off)
                .map_err(|_| Error::Unsupported(format!("offset of object {id} exceeds 4 GiB")))?;
            data.push(1u8);
            data.extend_from_slice(&off32.to_be_bytes());
            data.extend_from_slice(&o.to_be_bytes());
        }
        let mut dict = trailer_dict(loaded, size);
        dict.set("Type", Object::Name(b"XRef".to_vec()));
        dict.set("W", Object::Array(vec![1.into(), 4.into(), 2.into()]));
        let index: Vec<Object> = runs(&ids)
            .into_iter()
            .flat_map(|(f, c)| [Object::Integer(i64::from(f)), Object::Integer(i64::from(c))])
            .collect();
        dict.set("Index", Object::Array(index));
        let stream = lopdf::Stream::new(dict, data);
        out.extend_from_slice(format!("{xref_id} 0 obj\n").as_bytes());
        syntax::write_stream(&mut out, &stream);
        out.extend_from_slice(b"\nendobj\n");
    } else {
        let size = max_id.saturating_add(1).max(loaded.size);
        out.extend_from_slice(b"xref\n");
        let mut i = 0usize;
        for (first, count) in runs(&objects.iter().map(|o| o.id).collect::<Vec<_>>()) {
            out.extend_from_slice(format!("{first} {count}\n").as_bytes());
            for _ in 0..count {
                let off = offsets
                    .get(i)
                    .copied()
                    .ok_or(Error::Internal("xref offsets"))?;
                let generation = objects.get(i).map_or(0, |o| o.generation);
                out.extend_from_slice(format!("{off:010} {generation:05} n\r\n").as_bytes());
                i += 1;
            }
        }
        out.extend_from_slice(b"trailer\n");
        syntax::write_dict(&mut out, &trailer_dict(loaded, size));
        out.push(b'\n');
    }
    out.extend_from_slice(format!("startxref\n{xref_offset}\n%%EOF\n").as_bytes());
    let ids = objects.iter().map(|o| o.id).collect();
    Ok(Written {
        bytes: out,
        ids,
        body_offsets,
    })
}

/// Serialise an object as the body of a [`NewObject`].
pub(crate) fn object(id: u32, generation: u16, o: &Object) -> NewObject {
    let mut body = Vec::new();
    syntax::write_object(&mut body, o);
    NewObject {
        id,
        generation,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_group_consecutive_numbers() {
        assert_eq!(runs(&[3, 4, 5, 9, 10, 20]), vec![(3, 3), (9, 2), (20, 1)]);
        assert!(runs(&[]).is_empty());
    }
}
