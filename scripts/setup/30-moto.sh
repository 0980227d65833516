#!/usr/bin/env bash
# moto in server mode: the EC2 API the ec2 provider tests and benchmark run
# against (on loopback). Installed into .venv-moto at the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-moto
spec='moto[server]>=5.1,<6'
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, flask' 2>/dev/null; then
  echo "moto: $("$venv/bin/python" -c 'import moto; print(moto.__version__)') present in $venv"
  exit 0
fi
echo "moto: installing $spec into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
"$venv/bin/moto_server" --help >/dev/null
echo "moto: $("$venv/bin/python" -c 'import moto; print(moto.__version__)') installed"
