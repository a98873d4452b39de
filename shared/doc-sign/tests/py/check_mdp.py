#!/usr/bin/env python3
"""FieldMDP / DocMDP checks with pyHanko (not our code).

  check_mdp.py fill IN OUT FIELD=VALUE [FIELD=VALUE ...]
      pyHanko's IncrementalPdfFileWriter appends one incremental update that sets /V of each
      named field (fully qualified name) to VALUE (a text string; a value starting with "/" is
      a name, and the field's widgets get /AS set to it, as for a check box). This is the
      "later change" made by a producer that is not ours.

  check_mdp.py mdp PDF
      For every embedded signature: pyHanko's reading of its FieldMDP and DocMDP, and the
      result of pyHanko's difference analysis (DEFAULT_DIFF_POLICY, which enforces FieldMDP):
      the modification level, or "suspicious" with pyHanko's message. The analysis reads only
      the document structure, so it does not depend on the signature algorithm (pyHanko cannot
      verify SM2; check_pdf.py does the cryptography with OpenSSL).

Prints one JSON object.
"""
import json, sys
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, SuspiciousModification


def find_field(root, name):
    """(reference, dictionary) of the terminal field with this fully qualified name."""
    stack = [(ref, "") for ref in root["/AcroForm"]["/Fields"]]
    while stack:
        ref, prefix = stack.pop()
        d = ref.get_object()
        part = d.get("/T")
        full = prefix if part is None else (str(part) if not prefix else prefix + "." + str(part))
        kids = [k for k in d.get("/Kids", []) if "/T" in k.get_object()]
        if full == name and not kids:
            return ref, d
        stack.extend((k, full) for k in kids)
    raise SystemExit("no field " + name)


def fill(src, dst, assignments):
    with open(src, "rb") as f:
        w = IncrementalPdfFileWriter(f, strict=False)
        for a in assignments:
            name, value = a.split("=", 1)
            ref, d = find_field(w.root, name)
            if value.startswith("/"):
                v = generic.NameObject(value)
                d["/V"] = v
                widgets = [k for k in d.get("/Kids", [])] or [ref]
                for k in widgets:
                    kd = k.get_object()
                    kd["/AS"] = v
                    w.mark_update(k)
            else:
                d["/V"] = generic.TextStringObject(value)
            w.mark_update(ref)
        with open(dst, "wb") as out:
            w.write(out)
    print(json.dumps({"ok": True}))


def mdp(path):
    out = {"signatures": []}
    with open(path, "rb") as f:
        r = PdfFileReader(f, strict=False)
        for emb in r.embedded_signatures:
            # pyHanko sets .coverage while checking the digest (compute_integrity_info), which
            # needs SM3; the coverage evaluation alone is algorithm-independent.
            emb.coverage = emb.evaluate_signature_coverage()
            s = {"field": emb.field_name, "coverage": emb.coverage.name}
            fm = emb.fieldmdp
            s["fieldmdp"] = None if fm is None else {
                "action": fm.action.value[1:] if fm.action.value.startswith("/") else fm.action.value,
                "fields": None if fm.fields is None else [str(x) for x in fm.fields],
            }
            dm = emb.docmdp_level
            s["docmdp"] = None if dm is None else int(dm.value)
            res = emb.evaluate_modifications(DEFAULT_DIFF_POLICY)
            if isinstance(res, SuspiciousModification):
                s["modification"] = "suspicious"
                s["message"] = str(res)
            else:
                s["modification"] = res.modification_level.name
                s["changed_fields"] = sorted(str(x) for x in res.changed_form_fields)
            out["signatures"].append(s)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "fill":
        fill(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "mdp":
        mdp(sys.argv[2])
    else:
        raise SystemExit(__doc__)
