#!/usr/bin/env python3
"""Checks that the committed mobile projects of the doctor app agree with tauri.conf.json.

    scripts/mobile-config-check.py [REPO_ROOT]      (default: this script's ../)

The Android (`mobile-app/src-tauri/gen/android`, Gradle) and iOS (`mobile-app/src-tauri/gen/apple`,
XcodeGen `project.yml` + `Info.plist`) projects are generated once and then committed, so
nothing keeps them in step with `mobile-app/src-tauri/tauri.conf.json`; and nothing can build
them here (no Android SDK, no Xcode). One line per check, `ok` or `FAIL` with the file and key
at fault; exit status 1 if any check fails.

* identifier: tauri.conf.json `identifier` = Android `applicationId` and `namespace`
  (app/build.gradle.kts) = the package of MainActivity.kt (and its directory) = iOS
  `PRODUCT_BUNDLE_IDENTIFIER` (every one in project.yml) and `options.bundleIdPrefix`.
* version: `version` = iOS `CFBundleShortVersionString` / `CFBundleVersion` (Info.plist and
  project.yml; `bundle.iOS.bundleVersion` for the latter if set). Android takes versionName /
  versionCode from app/tauri.properties, which the Tauri CLI writes at build time (not
  committed): build.gradle.kts must read them from there, and a tauri.properties present
  (after a build) must hold the config's version (versionCode: `bundle.android.versionCode`, or
  major*1000000 + minor*1000 + patch as the CLI computes it).
* deep-link: the schemes of `plugins.deep-link.mobile[].scheme` = the `<data android:scheme>` of
  the VIEW + BROWSABLE (+ DEFAULT) intent filters of the launcher activity = the iOS
  `CFBundleURLSchemes` (Info.plist and project.yml; http/https excluded there: those are
  universal links); none missing and none extra.
* camera: Android `android.permission.CAMERA`; iOS `NSCameraUsageDescription` non-empty.
* info-plist: every key of project.yml `info.properties` equals Info.plist's (XcodeGen
  rewrites Info.plist from project.yml), and Info.plist has no key project.yml would drop.
* plugins: the Android build applies the generated `tauri.settings.gradle` /
  `tauri.build.gradle.kts` (Tauri lists every plugin's Gradle module there, e.g.
  `:tauri-plugin-yiqian-keystore`, so nothing is listed by hand), and the shell crate depends
  directly on the plugins whose native code must be linked (Cargo hands a plugin's Android
  library path only to direct dependents): tauri-plugin-yiqian-keystore, and
  tauri-plugin-deep-link when tauri.conf.json configures it.
* keystore-bridge: the names the Rust side of tauri-plugin-yiqian-keystore registers
  (`register_android_plugin("pkg", "Class")`, `ios_plugin_binding!(symbol)`) exist in the
  Kotlin (`package`, `@TauriPlugin class`) and Swift (`@_cdecl`) sources, the Gradle namespace
  is that package, and the Swift package's library product is named after the crate (the
  tauri-plugin build helper links the product of that name).

Python standard library only; project.yml is read by a small reader for the YAML it uses
(block maps and sequences, flow sequences, quoted and plain scalars, block scalars).
"""

import json
import plistlib
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

CONF = "mobile-app/src-tauri/tauri.conf.json"
SHELL_CARGO = "mobile-app/src-tauri/Cargo.toml"
ANDROID = "mobile-app/src-tauri/gen/android"
APP_GRADLE = ANDROID + "/app/build.gradle.kts"
MANIFEST = ANDROID + "/app/src/main/AndroidManifest.xml"
ANDROID_JAVA = ANDROID + "/app/src/main/java"
SETTINGS_GRADLE = ANDROID + "/settings.gradle"
TAURI_PROPERTIES = ANDROID + "/app/tauri.properties"
APPLE = "mobile-app/src-tauri/gen/apple"
PROJECT_YML = APPLE + "/project.yml"
KEYSTORE = "mobile-app/keystore"
KEYSTORE_CARGO = KEYSTORE + "/Cargo.toml"
KEYSTORE_RUST = KEYSTORE + "/src/mobile.rs"
KEYSTORE_GRADLE = KEYSTORE + "/android/build.gradle.kts"
KEYSTORE_KOTLIN = KEYSTORE + "/android/src/main/java"
KEYSTORE_PACKAGE_SWIFT = KEYSTORE + "/ios/Package.swift"
KEYSTORE_SWIFT = KEYSTORE + "/ios/Sources"
KEYSTORE_CRATE = "tauri-plugin-yiqian-keystore"
DEEP_LINK_CRATE = "tauri-plugin-deep-link"

ANDROID_NS = "http://schemas.android.com/apk/res/android"
WEB_SCHEMES = {"http", "https"}
# Keys XcodeGen writes into an application's Info.plist itself (its defaults).
XCODEGEN_DEFAULT_KEYS = {
    "CFBundleDevelopmentRegion",
    "CFBundleExecutable",
    "CFBundleIdentifier",
    "CFBundleInfoDictionaryVersion",
    "CFBundleName",
    "CFBundlePackageType",
    "CFBundleShortVersionString",
    "CFBundleVersion",
}


def input_files(root):
    """Every file the checks read that exists under `root` (relative paths); the tests copy
    these."""
    root = Path(root).resolve()
    files = [
        CONF,
        SHELL_CARGO,
        APP_GRADLE,
        MANIFEST,
        SETTINGS_GRADLE,
        TAURI_PROPERTIES,
        PROJECT_YML,
        KEYSTORE_CARGO,
        KEYSTORE_RUST,
        KEYSTORE_GRADLE,
        KEYSTORE_PACKAGE_SWIFT,
    ]
    for directory, pattern in (
        (ANDROID_JAVA, "*.kt"),
        (KEYSTORE_KOTLIN, "*.kt"),
        (KEYSTORE_SWIFT, "*.swift"),
    ):
        if (root / directory).is_dir():
            files += [str(p.relative_to(root)) for p in sorted((root / directory).rglob(pattern))]
    try:
        plist = info_plist_path(root, read_project_yml(root))
        files.append(str(plist.relative_to(root)))
    except (CheckError, OSError, ValueError):
        pass
    return [f for f in dict.fromkeys(files) if (root / f).is_file()]


class CheckError(Exception):
    """A file is missing or unreadable: the check fails with this message."""


# ---------------------------------------------------------------- a small YAML reader


class YamlError(CheckError):
    pass


class _Line:
    def __init__(self, number, indent, text):
        self.number = number
        self.indent = indent
        self.text = text


_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},&*!|>%@`-][^:#]*?|-[^\s:][^:#]*?)\s*:(?:\s+(.*))?$""")


def _strip_comment(text):
    """Drops a ` # comment` outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or text[i - 1] in " \t[,:{"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text, where):
    text = text.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise YamlError(f"{where}: unterminated string {text!r}")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise YamlError(f"{where}: cannot read string {text!r}: {e}") from e
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise YamlError(f"{where}: unterminated string {text!r}")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlError(f"{where}: flow sequence over several lines is not supported: {text!r}")
        inner = text[1:-1].strip()
        return [] if not inner else [_scalar(part, where) for part in _split_flow(inner)]
    if text.startswith("{"):
        raise YamlError(f"{where}: flow mappings are not supported: {text!r}")
    return text


def _split_flow(text):
    parts, quote, start = [], None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


class _Yaml:
    """Block mappings and sequences of plain / quoted scalars, flow sequences and block
    scalars: what XcodeGen's project.yml uses. Values stay strings (`true`, `15.0`)."""

    def __init__(self, text, name):
        self.raw = text.split("\n")
        self.name = name
        self.i = 0

    def where(self, number):
        return f"{self.name} line {number}"

    def peek(self):
        while self.i < len(self.raw):
            raw = self.raw[self.i]
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlError(f"{self.where(self.i + 1)}: tab in indentation")
            text = _strip_comment(raw)
            if text.strip() in ("", "---"):
                self.i += 1
                continue
            indent = len(text) - len(text.lstrip(" "))
            return _Line(self.i + 1, indent, text.strip())
        return None

    def parse(self):
        first = self.peek()
        if first is None:
            return {}
        node = self.node(first.indent)
        rest = self.peek()
        if rest is not None:
            raise YamlError(f"{self.where(rest.number)}: unexpected indentation")
        return node

    def node(self, indent):
        line = self.peek()
        if line.text == "-" or line.text.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent, into=None):
        result = {} if into is None else into
        while True:
            line = self.peek()
            if line is None or line.indent < indent:
                return result
            if line.indent > indent:
                raise YamlError(f"{self.where(line.number)}: unexpected indentation")
            if line.text == "-" or line.text.startswith("- "):
                return result
            self.i += 1
            key, rest = self.key(line)
            if key in result:
                raise YamlError(f"{self.where(line.number)}: duplicate key {key!r}")
            result[key] = self.value(rest, indent, line)

    def key(self, line, text=None):
        text = line.text if text is None else text
        m = _KEY.match(text)
        if not m:
            raise YamlError(f"{self.where(line.number)}: expected `key: value`, got {text!r}")
        key = m.group(1).strip()
        if key[:1] in "'\"":
            key = _scalar(key, self.where(line.number))
        return key, (m.group(2) or "").strip()

    def value(self, rest, indent, line):
        if re.fullmatch(r"[|>][-+]?[0-9]?", rest):
            return self.block_scalar(indent, rest[0] == "|")
        if rest:
            return _scalar(rest, self.where(line.number))
        nxt = self.peek()
        if nxt is None:
            return None
        if nxt.indent > indent:
            return self.node(nxt.indent)
        if nxt.indent == indent and (nxt.text == "-" or nxt.text.startswith("- ")):
            return self.sequence(indent)
        return None

    def block_scalar(self, indent, literal):
        lines = []
        while self.i < len(self.raw):
            raw = self.raw[self.i]
            if raw.strip() and len(raw) - len(raw.lstrip(" ")) <= indent:
                break
            lines.append(raw)
            self.i += 1
        body = list(lines)
        while body and not body[-1].strip():
            body.pop()
        widths = [len(ln) - len(ln.lstrip(" ")) for ln in body if ln.strip()]
        cut = min(widths) if widths else 0
        text = [ln[cut:] for ln in body]
        return ("\n" if literal else " ").join(text) + "\n"

    def sequence(self, indent):
        items = []
        while True:
            line = self.peek()
            if line is None or line.indent != indent:
                if line is not None and line.indent > indent:
                    raise YamlError(f"{self.where(line.number)}: unexpected indentation")
                return items
            if not (line.text == "-" or line.text.startswith("- ")):
                return items
            self.i += 1
            rest = line.text[1:].lstrip(" ")
            if not rest:
                nxt = self.peek()
                items.append(self.node(nxt.indent) if nxt and nxt.indent > indent else None)
                continue
            column = indent + (len(line.text) - len(rest))
            if not rest.startswith("[") and _KEY.match(rest):
                key, value_text = self.key(line, rest)
                item = {key: self.value(value_text, column, line)}
                items.append(self.mapping(column, item))
            else:
                items.append(_scalar(rest, self.where(line.number)))


def parse_yaml(text, name="YAML"):
    return _Yaml(text, name).parse()


# ---------------------------------------------------------------- readers


def read_text(root, rel):
    path = Path(root) / rel
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckError(f"{rel}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckError(f"{rel}: unreadable: {e}") from None


def read_conf(root):
    try:
        conf = json.loads(read_text(root, CONF))
    except json.JSONDecodeError as e:
        raise CheckError(f"{CONF}: not JSON: {e}") from None
    if not isinstance(conf, dict):
        raise CheckError(f"{CONF}: not a JSON object")
    return conf


def conf_identifier(conf):
    ident = conf.get("identifier")
    if not isinstance(ident, str) or not ident:
        raise CheckError(f"{CONF}: no `identifier`")
    return ident


def conf_version(root, conf):
    version = conf.get("version")
    if isinstance(version, str) and version.endswith(".json"):
        # Tauri also takes a path to a package.json holding the version.
        rel = str((Path(CONF).parent / version))
        try:
            version = json.loads(read_text(root, rel)).get("version")
        except (json.JSONDecodeError, AttributeError):
            raise CheckError(f"{rel} (tauri.conf.json `version`): no version in it") from None
    if not isinstance(version, str) or not version:
        raise CheckError(f"{CONF}: no `version`")
    return version


def read_project_yml(root):
    return parse_yaml(read_text(root, PROJECT_YML), PROJECT_YML)


def ios_target(project):
    """The iOS application target of project.yml (name, definition)."""
    targets = project.get("targets") if isinstance(project, dict) else None
    if not isinstance(targets, dict):
        raise CheckError(f"{PROJECT_YML}: no `targets`")
    apps = [
        (name, t)
        for name, t in targets.items()
        if isinstance(t, dict) and t.get("type") == "application" and t.get("platform") == "iOS"
    ]
    if len(apps) != 1:
        raise CheckError(
            f"{PROJECT_YML}: expected one iOS application target, found {len(apps)}"
        )
    return apps[0]


def ios_info_properties(project):
    name, target = ios_target(project)
    info = target.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("properties"), dict):
        raise CheckError(f"{PROJECT_YML}: targets.{name}.info.properties missing")
    return info["properties"]


def info_plist_path(root, project):
    name, target = ios_target(project)
    info = target.get("info")
    rel = info.get("path") if isinstance(info, dict) else None
    if not isinstance(rel, str) or not rel:
        raise CheckError(f"{PROJECT_YML}: targets.{name}.info.path missing")
    return Path(root) / APPLE / rel


def read_info_plist(root, project):
    path = info_plist_path(root, project)
    rel = path.relative_to(root)
    try:
        with open(path, "rb") as f:
            data = plistlib.load(f)
    except FileNotFoundError:
        raise CheckError(f"{rel}: missing") from None
    except (OSError, plistlib.InvalidFileException, ValueError, ET.ParseError) as e:
        raise CheckError(f"{rel}: not a property list: {e}") from None
    if not isinstance(data, dict):
        raise CheckError(f"{rel}: not a dictionary")
    return str(rel), data


def read_manifest(root):
    text = read_text(root, MANIFEST)
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        raise CheckError(f"{MANIFEST}: not XML: {e}") from None


def android_attr(element, name):
    return element.get(f"{{{ANDROID_NS}}}{name}")


def launcher_activity(manifest):
    for activity in manifest.iter("activity"):
        for f in activity.iter("intent-filter"):
            actions = {android_attr(a, "name") for a in f.iter("action")}
            categories = {android_attr(c, "name") for c in f.iter("category")}
            if (
                "android.intent.action.MAIN" in actions
                and "android.intent.category.LAUNCHER" in categories
            ):
                return activity
    raise CheckError(f"{MANIFEST}: no activity with a MAIN / LAUNCHER intent filter")


def gradle_values(text, key):
    return re.findall(rf'^\s*{re.escape(key)}\s*=\s*"([^"]*)"', text, re.M)


def without_comments(code):
    """Kotlin / Swift / Rust / Gradle source without // and /* */ comments (strings kept)."""
    return re.sub(r'("(?:[^"\\\n]|\\.)*")|//[^\n]*|/\*.*?\*/', lambda m: m.group(1) or "", code, flags=re.S)


def toml_table(text, table):
    """The lines of one `[table]` of a TOML file."""
    lines, inside = [], False
    for line in text.split("\n"):
        m = re.fullmatch(r"\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?", line)
        if m:
            inside = m.group(1) == table
            continue
        if inside:
            lines.append(line)
    return "\n".join(lines)


def toml_dependencies(text):
    """Names in the [dependencies] / [target.*.dependencies] tables of a Cargo.toml (also
    `package = "..."` renames)."""
    names, table = set(), None
    for line in text.split("\n"):
        stripped = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", stripped)
        if m:
            table = m.group(1)
            if re.fullmatch(r"(?:target\.[^.]+(?:\.[^.]+)*\.)?dependencies\.([\w-]+)", table):
                names.add(table.rsplit(".", 1)[1])
            continue
        if table is None or not re.fullmatch(r"(?:target\..+\.)?dependencies", table):
            continue
        m = re.match(r"([\w-]+)(?:\.workspace)?\s*=", stripped)
        if m:
            names.add(m.group(1))
            pkg = re.search(r'\bpackage\s*=\s*"([^"]+)"', stripped)
            if pkg:
                names.add(pkg.group(1))
    return names


# ---------------------------------------------------------------- checks


def check_identifier(root):
    conf = read_conf(root)
    ident = conf_identifier(conf)
    # Tauri turns the identifier into the Android package this way.
    package = ident.replace("-", "_")
    problems = []

    gradle = without_comments(read_text(root, APP_GRADLE))
    for key in ("applicationId", "namespace"):
        values = gradle_values(gradle, key)
        if not values:
            problems.append(f"{APP_GRADLE}: no `{key} = \"...\"`")
        for v in values:
            if v != package:
                problems.append(
                    f"{APP_GRADLE}: {key} is {v!r}, tauri.conf.json identifier is {ident!r}"
                    + (f" (Android package {package!r})" if package != ident else "")
                )

    java = Path(root) / ANDROID_JAVA
    activities = sorted(java.rglob("MainActivity.kt")) if java.is_dir() else []
    if not activities:
        problems.append(f"{ANDROID_JAVA}: no MainActivity.kt")
    for path in activities:
        rel = path.relative_to(root)
        m = re.search(r"^\s*package\s+([\w.]+)", path.read_text(encoding="utf-8"), re.M)
        if not m:
            problems.append(f"{rel}: no package declaration")
            continue
        if m.group(1) != package:
            problems.append(f"{rel}: package is {m.group(1)!r}, expected {package!r}")
        directory = ".".join(path.parent.relative_to(java).parts)
        if directory != package:
            problems.append(f"{rel}: lies in directory {directory!r}, expected {package!r}")

    project = read_project_yml(root)
    ids = []

    def walk(node, trail):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "PRODUCT_BUNDLE_IDENTIFIER":
                    ids.append((".".join(trail + [k]), v))
                walk(v, trail + [str(k)])
        elif isinstance(node, list):
            for n, v in enumerate(node):
                walk(v, trail + [str(n)])

    walk(project, [])
    if not ids:
        problems.append(f"{PROJECT_YML}: no PRODUCT_BUNDLE_IDENTIFIER")
    for trail, v in ids:
        if v != ident:
            problems.append(f"{PROJECT_YML}: {trail} is {v!r}, tauri.conf.json identifier is {ident!r}")
    options = project.get("options") if isinstance(project, dict) else None
    prefix = options.get("bundleIdPrefix") if isinstance(options, dict) else None
    if prefix != ident:
        problems.append(
            f"{PROJECT_YML}: options.bundleIdPrefix is {prefix!r}, tauri.conf.json identifier is {ident!r}"
        )
    return problems, f"{ident} (Android applicationId, namespace, MainActivity package; iOS PRODUCT_BUNDLE_IDENTIFIER, bundleIdPrefix)"


def android_version_code(conf, version):
    explicit = ((conf.get("bundle") or {}).get("android") or {}).get("versionCode")
    if explicit is not None:
        return str(explicit)
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        return None
    major, minor, patch = (int(x) for x in m.groups())
    return str(major * 1000000 + minor * 1000 + patch)


def check_version(root):
    conf = read_conf(root)
    version = conf_version(root, conf)
    bundle_version = ((conf.get("bundle") or {}).get("iOS") or {}).get("bundleVersion") or version
    problems = []

    project = read_project_yml(root)
    props = ios_info_properties(project)
    plist_rel, plist = read_info_plist(root, project)
    for key, expected in (
        ("CFBundleShortVersionString", version),
        ("CFBundleVersion", bundle_version),
    ):
        for source, value in ((plist_rel, plist.get(key)), (f"{PROJECT_YML} info.properties", props.get(key))):
            if value is None:
                problems.append(f"{source}: no {key}")
            elif str(value) != expected:
                problems.append(f"{source}: {key} is {value!r}, tauri.conf.json version is {expected!r}")

    gradle = without_comments(read_text(root, APP_GRADLE))
    for key in ("versionName", "versionCode"):
        literal = gradle_values(gradle, key)
        for v in literal:
            expected = version if key == "versionName" else android_version_code(conf, version)
            if v != expected:
                problems.append(f"{APP_GRADLE}: {key} is {v!r}, expected {expected!r}")
        if not literal and not re.search(
            rf'^\s*{key}\s*=\s*tauriProperties\.getProperty\(\s*"tauri\.android\.{key}"', gradle, re.M
        ):
            problems.append(
                f"{APP_GRADLE}: {key} neither read from tauri.properties (tauri.android.{key}) nor set"
            )
    if 'file("tauri.properties")' not in gradle:
        problems.append(f'{APP_GRADLE}: does not load file("tauri.properties")')

    note = "Android from app/tauri.properties at build time (not committed)"
    props_path = Path(root) / TAURI_PROPERTIES
    if props_path.is_file():
        values = {}
        for line in props_path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.lstrip().startswith(("#", "!")):
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
        for key, expected in (
            ("tauri.android.versionName", version),
            ("tauri.android.versionCode", android_version_code(conf, version)),
        ):
            if values.get(key) != expected:
                problems.append(f"{TAURI_PROPERTIES}: {key} is {values.get(key)!r}, expected {expected!r}")
        note = "Android app/tauri.properties (generated) agrees"
    return problems, f"{version} (iOS Info.plist and project.yml; {note})"


def deep_link_schemes(conf):
    """(all mobile schemes, custom ones) from plugins.deep-link.mobile; [] if not configured."""
    plugins = conf.get("plugins") or {}
    entries = (plugins.get("deep-link") or {}).get("mobile") or []
    if not isinstance(entries, list):
        raise CheckError(f"{CONF}: plugins.deep-link.mobile is not a list")
    schemes = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CheckError(f"{CONF}: plugins.deep-link.mobile[{n}] is not an object")
        # tauri-plugin-deep-link's default when `scheme` is absent.
        entry_schemes = entry.get("scheme", ["https", "http"])
        if isinstance(entry_schemes, str):
            entry_schemes = [entry_schemes]
        for s in entry_schemes:
            if s not in schemes:
                schemes.append(s)
    return schemes, [s for s in schemes if s not in WEB_SCHEMES]


def ios_url_schemes(url_types, source):
    schemes, problems = [], []
    if url_types is None:
        return schemes, problems
    if not isinstance(url_types, list):
        return schemes, [f"{source}: CFBundleURLTypes is not a list"]
    for n, t in enumerate(url_types):
        if not isinstance(t, dict) or not isinstance(t.get("CFBundleURLSchemes"), list):
            problems.append(f"{source}: CFBundleURLTypes[{n}] has no CFBundleURLSchemes list")
            continue
        if not t.get("CFBundleURLName"):
            problems.append(f"{source}: CFBundleURLTypes[{n}] has no CFBundleURLName")
        schemes += [s for s in t["CFBundleURLSchemes"] if s not in schemes]
    return schemes, problems


def compare_schemes(source, found, expected, what):
    problems = []
    for s in expected:
        if s not in found:
            problems.append(f"{source}: scheme {s!r} of tauri.conf.json plugins.deep-link.mobile missing from {what}")
    for s in found:
        if s not in expected:
            problems.append(f"{source}: scheme {s!r} in {what} is not in tauri.conf.json plugins.deep-link.mobile")
    return problems


def check_deep_link(root):
    conf = read_conf(root)
    schemes, custom = deep_link_schemes(conf)
    problems = []

    manifest = read_manifest(root)
    launcher = launcher_activity(manifest)
    found = []
    for activity in manifest.iter("activity"):
        for f in activity.iter("intent-filter"):
            actions = {android_attr(a, "name") for a in f.iter("action")}
            categories = {android_attr(c, "name") for c in f.iter("category")}
            if "android.intent.action.VIEW" not in actions or "android.intent.category.BROWSABLE" not in categories:
                continue
            filter_schemes = [android_attr(d, "scheme") for d in f.iter("data") if android_attr(d, "scheme")]
            if activity is not launcher and filter_schemes:
                problems.append(
                    f"{MANIFEST}: deep-link intent filter ({', '.join(filter_schemes)}) on activity "
                    f"{android_attr(activity, 'name')!r}, not on the launcher activity Tauri runs in"
                )
            if "android.intent.category.DEFAULT" not in categories:
                problems.append(
                    f"{MANIFEST}: VIEW/BROWSABLE intent filter ({', '.join(filter_schemes)}) lacks category DEFAULT"
                )
            found += [s for s in filter_schemes if s not in found]
    problems += compare_schemes(MANIFEST, found, schemes, "the VIEW/BROWSABLE intent filters")

    project = read_project_yml(root)
    plist_rel, plist = read_info_plist(root, project)
    props = ios_info_properties(project)
    for source, url_types in ((plist_rel, plist.get("CFBundleURLTypes")), (f"{PROJECT_YML} info.properties", props.get("CFBundleURLTypes"))):
        ios_found, ios_problems = ios_url_schemes(url_types, source)
        problems += ios_problems
        problems += compare_schemes(source, ios_found, custom, "CFBundleURLTypes/CFBundleURLSchemes")
    shown = ", ".join(f"{s}://" for s in schemes) or "none configured"
    return problems, f"{shown} (Android intent filter; iOS CFBundleURLSchemes in Info.plist and project.yml)"


def check_camera(root):
    problems = []
    manifest = read_manifest(root)
    permissions = {android_attr(p, "name") for p in manifest.iter("uses-permission")}
    if "android.permission.CAMERA" not in permissions:
        problems.append(f"{MANIFEST}: no <uses-permission android:name=\"android.permission.CAMERA\" />")
    features = {android_attr(p, "name"): android_attr(p, "required") for p in manifest.iter("uses-feature")}
    # Without a declaration, the CAMERA permission implies a required camera (app stores then
    # hide the app from devices without one); scanning is optional here (links can be pasted).
    if "android.permission.CAMERA" in permissions and features.get("android.hardware.camera", "absent") != "false":
        problems.append(
            f'{MANIFEST}: needs <uses-feature android:name="android.hardware.camera" android:required="false" />'
            " (the CAMERA permission otherwise implies a required camera)"
        )
    project = read_project_yml(root)
    plist_rel, plist = read_info_plist(root, project)
    props = ios_info_properties(project)
    for source, value in ((plist_rel, plist.get("NSCameraUsageDescription")), (f"{PROJECT_YML} info.properties", props.get("NSCameraUsageDescription"))):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{source}: NSCameraUsageDescription missing or empty (iOS kills the app when it opens the camera)")
    return problems, "Android CAMERA permission; iOS NSCameraUsageDescription in Info.plist and project.yml"


def _map_scalars(value, f):
    """`value` with `f` applied to every scalar inside its lists and dicts."""
    if isinstance(value, list):
        return [_map_scalars(v, f) for v in value]
    if isinstance(value, dict):
        return {k: _map_scalars(v, f) for k, v in value.items()}
    return f(value)


def _yaml_string(scalar):
    if isinstance(scalar, bool):
        return "true" if scalar else "false"
    if isinstance(scalar, (int, float)):
        return str(scalar)
    return scalar


def _as_yaml_strings(value):
    """A plist value as the reader gives project.yml values (all scalars strings)."""
    return _map_scalars(value, _yaml_string)


def _yaml_bool(scalar):
    if isinstance(scalar, str) and scalar in ("True", "TRUE", "yes", "Yes", "YES"):
        return "true"
    if isinstance(scalar, str) and scalar in ("False", "FALSE", "no", "No", "NO"):
        return "false"
    return scalar


def _normalise_yaml(value):
    return _map_scalars(value, _yaml_bool)


def check_info_plist(root):
    project = read_project_yml(root)
    props = ios_info_properties(project)
    plist_rel, plist = read_info_plist(root, project)
    problems = []
    for key, value in props.items():
        if key not in plist:
            problems.append(f"{plist_rel}: no {key} (project.yml info.properties has {value!r})")
        elif _as_yaml_strings(plist[key]) != _normalise_yaml(value):
            problems.append(
                f"{plist_rel}: {key} is {plist[key]!r}, {PROJECT_YML} info.properties has {value!r}"
            )
    for key in plist:
        if key not in props and key not in XCODEGEN_DEFAULT_KEYS:
            problems.append(
                f"{plist_rel}: {key} is not in {PROJECT_YML} info.properties; XcodeGen would drop it"
            )
    return problems, f"{len(props)} keys of project.yml info.properties equal in {plist_rel}"


def check_plugins(root):
    problems = []
    settings = without_comments(read_text(root, SETTINGS_GRADLE))
    if not re.search(r"""apply\s*\(?\s*from\s*[:=]\s*['"]tauri\.settings\.gradle['"]""", settings):
        problems.append(
            f"{SETTINGS_GRADLE}: does not apply 'tauri.settings.gradle' (Tauri's list of plugin modules)"
        )
    gradle = without_comments(read_text(root, APP_GRADLE))
    if not re.search(r"""apply\s*\(\s*from\s*=\s*file\(\s*"tauri\.build\.gradle\.kts"\s*\)\s*\)""", gradle):
        problems.append(
            f'{APP_GRADLE}: does not apply(from = file("tauri.build.gradle.kts")) (the app\'s dependencies on plugin modules)'
        )
    deps = toml_dependencies(read_text(root, SHELL_CARGO))
    wanted = [KEYSTORE_CRATE]
    if "deep-link" in (read_conf(root).get("plugins") or {}):
        wanted.append(DEEP_LINK_CRATE)
    for crate in wanted:
        if crate not in deps:
            problems.append(
                f"{SHELL_CARGO}: no direct dependency on {crate} (its Android module and Swift code are "
                "linked only for direct dependencies of the app crate)"
            )
    return problems, "Gradle applies the generated plugin lists; the shell depends on " + ", ".join(wanted)


def check_keystore_bridge(root):
    problems = []
    cargo = toml_table(read_text(root, KEYSTORE_CARGO), "package")
    name = re.search(r'^\s*name\s*=\s*"([^"]+)"', cargo, re.M)
    links = re.search(r'^\s*links\s*=\s*"([^"]+)"', cargo, re.M)
    crate = name.group(1) if name else None
    if crate != KEYSTORE_CRATE:
        problems.append(f"{KEYSTORE_CARGO}: package name is {crate!r}, expected {KEYSTORE_CRATE!r}")
    if not links:
        problems.append(f"{KEYSTORE_CARGO}: no `links` key (Tauri plugins need one)")

    rust = without_comments(read_text(root, KEYSTORE_RUST))
    android = re.search(r'register_android_plugin\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*,?\s*\)', rust)
    binding = re.search(r"ios_plugin_binding!\(\s*(\w+)\s*,?\s*\)", rust)
    ios_call = re.search(r"register_ios_plugin\(\s*(\w+)\s*,?\s*\)", rust)
    if not android:
        problems.append(f'{KEYSTORE_RUST}: no register_android_plugin("package", "Class") with literal names')
    else:
        package, cls = android.groups()
        gradle = read_text(root, KEYSTORE_GRADLE)
        namespaces = gradle_values(gradle, "namespace")
        if namespaces != [package]:
            problems.append(f"{KEYSTORE_GRADLE}: namespace is {namespaces}, Rust registers package {package!r}")
        kotlin_dir = Path(root) / KEYSTORE_KOTLIN
        matches = []
        for path in sorted(kotlin_dir.rglob("*.kt")) if kotlin_dir.is_dir() else []:
            code = without_comments(path.read_text(encoding="utf-8"))
            pkg = re.search(r"^\s*package\s+([\w.]+)", code, re.M)
            if pkg and pkg.group(1) == package and re.search(
                rf"@TauriPlugin\s+(?:\w+\s+)*class\s+{re.escape(cls)}\b", code
            ):
                matches.append(path)
        if not matches:
            problems.append(
                f"{KEYSTORE_KOTLIN}: no `@TauriPlugin class {cls}` in package {package!r} (Rust loads {package}.{cls})"
            )
    if not binding or not ios_call or binding.group(1) != ios_call.group(1):
        problems.append(f"{KEYSTORE_RUST}: ios_plugin_binding!(f) and register_ios_plugin(f) do not name the same f")
    else:
        symbol = binding.group(1)
        swift_dir = Path(root) / KEYSTORE_SWIFT
        cdecls = []
        for path in sorted(swift_dir.rglob("*.swift")) if swift_dir.is_dir() else []:
            cdecls += re.findall(r'@_cdecl\(\s*"([^"]+)"\s*\)', without_comments(path.read_text(encoding="utf-8")))
        if symbol not in cdecls:
            problems.append(f'{KEYSTORE_SWIFT}: no @_cdecl("{symbol}") (Rust binds {symbol})')
    package_swift = without_comments(read_text(root, KEYSTORE_PACKAGE_SWIFT))
    products = re.findall(r'\.library\(\s*name:\s*"([^"]+)"', package_swift)
    if crate and crate not in products:
        problems.append(
            f"{KEYSTORE_PACKAGE_SWIFT}: no library product named {crate!r} (found {products}); "
            "the tauri-plugin build helper links the product named after the crate"
        )
    if '"../.tauri/tauri-api"' not in package_swift:
        problems.append(f'{KEYSTORE_PACKAGE_SWIFT}: the Tauri dependency is not at path "../.tauri/tauri-api"')
    detail = "Rust registration = Kotlin class and Gradle namespace = Swift @_cdecl; Swift product = crate name"
    return problems, detail


CHECKS = [
    ("identifier", check_identifier),
    ("version", check_version),
    ("deep-link", check_deep_link),
    ("camera", check_camera),
    ("info-plist", check_info_plist),
    ("plugins", check_plugins),
    ("keystore-bridge", check_keystore_bridge),
]


def run(root, out=sys.stdout):
    """Runs every check against the repository at `root`; returns the number that failed."""
    root = Path(root).resolve()
    failed = 0
    for name, check in CHECKS:
        try:
            problems, detail = check(root)
        except CheckError as e:
            problems, detail = [str(e)], ""
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            # A file of an unexpected shape (say a list where a table was expected).
            problems, detail = [f"cannot check: {type(e).__name__}: {e}"], ""
        if problems:
            failed += 1
            print(f"FAIL {name}:", file=out)
            for p in problems:
                print(f"       {p}", file=out)
        else:
            print(f"ok   {name}: {detail}", file=out)
    return failed


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    root = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent.parent
    failed = run(root)
    if failed:
        print(f"[mobile-config-check] {failed} check(s) failed: the mobile projects disagree with {CONF}")
        return 1
    print(f"[mobile-config-check] the mobile projects agree with {CONF}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
