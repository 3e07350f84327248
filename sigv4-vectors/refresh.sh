#!/usr/bin/env bash
# Re-creates botocore/ and aws-sigv4/ from the published archives, byte for byte.
#
#   sigv4-vectors/refresh.sh                     # download both archives
#   SIGV4_ARCHIVES=/some/dir sigv4-vectors/refresh.sh
#                                                # use botocore-<v>.tar.gz and
#                                                # aws-sigv4-<v>.crate already in that folder
#
# Each archive must match the sha256 recorded below (and in README.md): to move to a new
# release, change the version and the sha256 here and in README.md, run this, then run
# `cargo test sigv4` and update the test lists and README.md for added or removed cases.
# s3-examples/ is not touched: it is transcribed from the S3 documentation.
set -euo pipefail

BOTOCORE_VERSION=1.44.8
BOTOCORE_SHA256=945b783c1a1259e2a8b078f3f3dd40fae32ea84ab01d3a9953af6b378da7108a
AWS_SIGV4_VERSION=1.6.4
AWS_SIGV4_SHA256=f385da9b7757ed4c8214797ad663ff534fb622006143530aa80e21f8e06ff85c

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

botocore="botocore-$BOTOCORE_VERSION.tar.gz"
crate="aws-sigv4-$AWS_SIGV4_VERSION.crate"

if [[ -n "${SIGV4_ARCHIVES:-}" ]]; then
    cp "$SIGV4_ARCHIVES/$botocore" "$SIGV4_ARCHIVES/$crate" "$work/"
else
    # The source distribution from PyPI (the wheel does not ship the tests).
    python3 -m pip download --quiet --no-deps --no-binary :all: \
        "botocore==$BOTOCORE_VERSION" -d "$work"
    # The .crate file, from the address cargo itself downloads it from.
    curl --fail --silent --show-error --location -o "$work/$crate" \
        "https://static.crates.io/crates/aws-sigv4/$crate"
fi

(
    cd "$work"
    printf '%s  %s\n%s  %s\n' "$BOTOCORE_SHA256" "$botocore" "$AWS_SIGV4_SHA256" "$crate" |
        sha256sum --check --strict -
    tar -xzf "$botocore"
    tar -xzf "$crate"
)

b="$work/botocore-$BOTOCORE_VERSION"
a="$work/aws-sigv4-$AWS_SIGV4_VERSION"

rm -rf "$here/botocore" "$here/aws-sigv4"
mkdir -p "$here/botocore" "$here/aws-sigv4/aws-signing-test-suite"

# The classic suite, with botocore's licence and notice.
cp "$b/LICENSE.txt" "$b/NOTICE" "$here/botocore/"
cp -R "$b/tests/unit/auth/aws4_testsuite" "$here/botocore/"

# The v4 suite (v4a/ is SigV4A, which this project does not implement), with the crate's
# licence and the suite's README.
cp "$a/LICENSE" "$here/aws-sigv4/"
cp "$a/aws-signing-test-suite/README.md" "$here/aws-sigv4/aws-signing-test-suite/"
cp -R "$a/aws-signing-test-suite/v4" "$here/aws-sigv4/aws-signing-test-suite/"

echo "refreshed botocore $BOTOCORE_VERSION and aws-sigv4 $AWS_SIGV4_VERSION into $here"
