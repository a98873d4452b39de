#!/usr/bin/env python3
"""Tests of scripts/mobile-config-check.py (standard library only).

    python3 scripts/test_mobile_config_check.py [-q]

Copies the files the checker reads from this repository into a temporary directory, checks
that the copy passes, then breaks one thing at a time in copies and checks that the right
check fails, naming the file and the key.
"""

import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "mobile-config-check.py"

_spec = importlib.util.spec_from_file_location("mobile_config_check", SCRIPT)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)

MANIFEST = checker.MANIFEST
APP_GRADLE = checker.APP_GRADLE
PROJECT_YML = checker.PROJECT_YML
INFO_PLIST = checker.APPLE + "/mobile-tauri_iOS/Info.plist"
MAIN_ACTIVITY = checker.ANDROID_JAVA + "/cn/yiqian/doctor/MainActivity.kt"
KEYSTORE_SWIFT = checker.KEYSTORE_SWIFT + "/KeystorePlugin.swift"


class MobileConfigCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mobile-config-check-")
        self.root = Path(self.tmp.name)
        for rel in checker.input_files(ROOT):
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, target)
        # A generated file: present only after an Android build; tested on its own below.
        (self.root / checker.TAURI_PROPERTIES).unlink(missing_ok=True)

    def tearDown(self):
        self.tmp.cleanup()

    def run_checker(self):
        out = io.StringIO()
        failed = checker.run(self.root, out)
        return failed, out.getvalue()

    def edit(self, rel, old, new, count=1):
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"test setup: {old!r} not in {rel}")
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    def edit_re(self, rel, pattern, new, flags=re.M):
        path = self.root / rel
        text, n = re.subn(pattern, new, path.read_text(encoding="utf-8"), count=1, flags=flags)
        self.assertEqual(n, 1, f"test setup: {pattern!r} not in {rel}")
        path.write_text(text, encoding="utf-8")

    def failures(self, output):
        """{check name: [problem lines]} of the FAIL blocks."""
        result, current = {}, None
        for line in output.splitlines():
            m = re.match(r"FAIL (\S+):$", line)
            if m:
                current = result.setdefault(m.group(1), [])
            elif line.startswith("ok   "):
                current = None
            elif current is not None and line.strip():
                current.append(line.strip())
        return result

    def assert_fails(self, check, *needles):
        failed, output = self.run_checker()
        self.assertGreater(failed, 0, output)
        problems = self.failures(output).get(check)
        self.assertIsNotNone(problems, f"check {check!r} did not fail:\n{output}")
        text = "\n".join(problems)
        for needle in needles:
            self.assertIn(needle, text, output)
        return self.failures(output)

    # ------------------------------------------------------------ the real projects

    def test_real_copy_passes(self):
        failed, output = self.run_checker()
        self.assertEqual(failed, 0, output)
        for name, _ in checker.CHECKS:
            self.assertRegex(output, rf"(?m)^ok   {re.escape(name)}: ", output)

    def test_command_line(self):
        good = subprocess.run(
            [sys.executable, str(SCRIPT), str(self.root)], capture_output=True, text=True
        )
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        self.assertIn("agree with", good.stdout)
        self.edit(MANIFEST, "android.permission.CAMERA", "android.permission.NOPE")
        bad = subprocess.run(
            [sys.executable, str(SCRIPT), str(self.root)], capture_output=True, text=True
        )
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertIn("FAIL camera:", bad.stdout)

    # ------------------------------------------------------------ the mutations asked for

    def test_changed_identifier_in_build_gradle(self):
        self.edit(APP_GRADLE, 'applicationId = "cn.yiqian.doctor"', 'applicationId = "cn.yiqian.other"')
        found = self.assert_fails("identifier", APP_GRADLE, "applicationId", "'cn.yiqian.other'", "'cn.yiqian.doctor'")
        self.assertEqual(list(found), ["identifier"])

    def test_missing_scheme_in_info_plist(self):
        self.edit(INFO_PLIST, "<string>yiqian</string>", "<string>other</string>")
        found = self.assert_fails("deep-link", INFO_PLIST, "'yiqian'", "missing from CFBundleURLTypes")
        # and Info.plist no longer matches project.yml
        self.assertIn("info-plist", found)

    def test_missing_url_types_in_info_plist(self):
        self.edit_re(INFO_PLIST, r"\t<key>CFBundleURLTypes</key>\n\t<array>.*?\n\t</array>\n", "", re.S)
        self.assert_fails("deep-link", INFO_PLIST, "'yiqian'", "missing")

    def test_extra_scheme_in_manifest(self):
        self.edit(
            MANIFEST,
            '<data android:scheme="yiqian" />',
            '<data android:scheme="yiqian" />\n                <data android:scheme="evil" />',
        )
        found = self.assert_fails("deep-link", MANIFEST, "'evil'", "not in tauri.conf.json")
        self.assertEqual(list(found), ["deep-link"])

    def test_changed_version_in_project_yml(self):
        self.edit(PROJECT_YML, "CFBundleShortVersionString: 0.1.0", "CFBundleShortVersionString: 0.2.0")
        found = self.assert_fails("version", PROJECT_YML, "CFBundleShortVersionString", "'0.2.0'", "'0.1.0'")
        self.assertIn("info-plist", found)

    def test_missing_camera_permission(self):
        self.edit_re(MANIFEST, r'^[ \t]*<uses-permission android:name="android.permission.CAMERA" />\n', "")
        found = self.assert_fails("camera", MANIFEST, "android.permission.CAMERA")
        self.assertEqual(list(found), ["camera"])

    # ------------------------------------------------------------ more breakage

    def test_missing_camera_usage_description(self):
        self.edit_re(PROJECT_YML, r'^[ \t]*NSCameraUsageDescription: [^\n]*\n', "")
        self.edit_re(INFO_PLIST, r"^\t<key>NSCameraUsageDescription</key>\n\t<string>[^<]*</string>\n", "")
        self.assert_fails("camera", INFO_PLIST, PROJECT_YML, "NSCameraUsageDescription")

    def test_camera_required(self):
        self.edit(MANIFEST, 'android:name="android.hardware.camera" android:required="false"',
                  'android:name="android.hardware.camera" android:required="true"')
        self.assert_fails("camera", MANIFEST, "android.hardware.camera")

    def test_scheme_missing_from_config(self):
        self.edit(checker.CONF, '"yiqian"', '"other"')
        self.assert_fails("deep-link", MANIFEST, INFO_PLIST, PROJECT_YML, "'yiqian'", "'other'")

    def test_deep_link_filter_without_browsable(self):
        self.edit(MANIFEST, '<category android:name="android.intent.category.BROWSABLE" />', "")
        self.assert_fails("deep-link", MANIFEST, "'yiqian'", "missing from the VIEW/BROWSABLE intent filters")

    def test_main_activity_package(self):
        self.edit(MAIN_ACTIVITY, "package cn.yiqian.doctor", "package cn.yiqian.other")
        self.assert_fails("identifier", MAIN_ACTIVITY, "'cn.yiqian.other'")

    def test_bundle_identifier_in_project_yml(self):
        self.edit(PROJECT_YML, "PRODUCT_BUNDLE_IDENTIFIER: cn.yiqian.doctor", "PRODUCT_BUNDLE_IDENTIFIER: cn.yiqian.other")
        self.assert_fails("identifier", PROJECT_YML, "PRODUCT_BUNDLE_IDENTIFIER", "'cn.yiqian.other'")

    def test_version_in_info_plist(self):
        self.edit_re(INFO_PLIST, r"(<key>CFBundleVersion</key>\n\t<string>)0\.1\.0", r"\g<1>7")
        self.assert_fails("version", INFO_PLIST, "CFBundleVersion", "'7'")

    def test_key_only_in_info_plist(self):
        self.edit_re(PROJECT_YML, r'^[ \t]*NSFaceIDUsageDescription: [^\n]*\n', "")
        self.assert_fails("info-plist", INFO_PLIST, "NSFaceIDUsageDescription", "XcodeGen would drop it")

    def test_tauri_properties(self):
        props = self.root / checker.TAURI_PROPERTIES
        props.write_text("tauri.android.versionName=0.1.0\ntauri.android.versionCode=1000\n", encoding="utf-8")
        failed, output = self.run_checker()
        self.assertEqual(failed, 0, output)
        props.write_text("tauri.android.versionName=0.0.9\ntauri.android.versionCode=9\n", encoding="utf-8")
        self.assert_fails("version", checker.TAURI_PROPERTIES, "versionName", "'0.0.9'", "versionCode")

    def test_gradle_literal_version(self):
        self.edit_re(APP_GRADLE, r'versionName = tauriProperties[^\n]*', 'versionName = "0.0.1"')
        self.assert_fails("version", APP_GRADLE, "versionName", "'0.0.1'")

    def test_swift_symbol_renamed(self):
        self.edit(KEYSTORE_SWIFT, '@_cdecl("init_plugin_yiqian_keystore")', '@_cdecl("init_plugin_keystore")')
        self.assert_fails("keystore-bridge", "init_plugin_yiqian_keystore")

    def test_kotlin_class_renamed(self):
        self.edit_re(
            checker.KEYSTORE_KOTLIN + "/cn/yiqian/keystore/KeystorePlugin.kt",
            r"class KeystorePlugin\b",
            "class KeyStorePlugin",
        )
        self.assert_fails("keystore-bridge", "KeystorePlugin", "cn.yiqian.keystore")

    def test_shell_without_keystore_dependency(self):
        self.edit_re(checker.SHELL_CARGO, r"^tauri-plugin-yiqian-keystore\s*=.*\n", "")
        self.assert_fails("plugins", checker.SHELL_CARGO, "tauri-plugin-yiqian-keystore")

    def test_missing_file(self):
        (self.root / PROJECT_YML).unlink()
        found = self.assert_fails("identifier", PROJECT_YML, "missing")
        self.assertIn("version", found)


class YamlReaderTest(unittest.TestCase):
    def test_subset(self):
        text = """\
name: demo   # a comment
options:
  bundleIdPrefix: "cn.example"
  deploymentTarget:
    iOS: 15.0
list: [a, "b c", 'd''e']
seq:
- x
- key: 1
  other: two
  nested:
    - deep
-   spaced: yes
script_holder:
  - script: |
      echo "${A:?}" # not a comment
      exit 0
    name: Build
info:
  properties:
    CFBundleURLTypes:
      - CFBundleURLName: "$(PRODUCT_BUNDLE_IDENTIFIER).yiqian"
        CFBundleURLSchemes: [yiqian]
    Text: "扫描 #1"
    Hash: a#b
"""
        data = checker.parse_yaml(text, "demo.yml")
        self.assertEqual(data["name"], "demo")
        self.assertEqual(data["options"], {"bundleIdPrefix": "cn.example", "deploymentTarget": {"iOS": "15.0"}})
        self.assertEqual(data["list"], ["a", "b c", "d'e"])
        self.assertEqual(data["seq"], ["x", {"key": "1", "other": "two", "nested": ["deep"]}, {"spaced": "yes"}])
        self.assertEqual(
            data["script_holder"],
            [{"script": 'echo "${A:?}" # not a comment\nexit 0\n', "name": "Build"}],
        )
        props = data["info"]["properties"]
        self.assertEqual(
            props["CFBundleURLTypes"],
            [{"CFBundleURLName": "$(PRODUCT_BUNDLE_IDENTIFIER).yiqian", "CFBundleURLSchemes": ["yiqian"]}],
        )
        self.assertEqual(props["Text"], "扫描 #1")
        self.assertEqual(props["Hash"], "a#b")

    def test_errors(self):
        for bad in ("a: 1\n  b: 2\n", "a: 1\na: 2\n", "a: [1,\n  2]\n", "a:\n\t- b\n"):
            with self.assertRaises(checker.YamlError, msg=bad):
                checker.parse_yaml(bad, "bad.yml")

    def test_real_project_yml(self):
        project = checker.parse_yaml((ROOT / PROJECT_YML).read_text(encoding="utf-8"), PROJECT_YML)
        target = project["targets"]["mobile-tauri_iOS"]
        self.assertEqual(target["info"]["path"], "mobile-tauri_iOS/Info.plist")
        self.assertEqual(target["settings"]["base"]["VALID_ARCHS"], "arm64")
        self.assertTrue(target["preBuildScripts"][0]["script"].startswith("npm run -- tauri ios xcode-script"))
        self.assertEqual(len(target["preBuildScripts"][0]["outputFiles"]), 2)


if __name__ == "__main__":
    unittest.main()
