#!/usr/bin/env bash
# Checks the Terraform module's formatting when terraform is installed (the
# AWS provider cannot be downloaded here, so fmt is the check that runs; the
# e2e contract tests parse the HCL either way). A badly formatted file fails CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform: not installed; fmt check not run (providers/tests/ec2_contract.rs still parses terraform/)"
  exit 0
fi
# -no-color and no CLI config warnings on stdout: only the offending files.
if ! terraform fmt -check -recursive -diff terraform/; then
  echo "terraform fmt: files above need 'terraform fmt -recursive terraform/'" >&2
  exit 1
fi
echo "terraform fmt: terraform/ is formatted"
