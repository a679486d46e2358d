#!/usr/bin/env bash
# azd predeploy hook: build the worker image in the registry (ACR Tasks, no local Docker) and point
# the function app's WORKER_IMAGE at it.
#
# The tag is a hash of the worker's sources (worker/, videojob/contract/), so an unchanged worker is not
# rebuilt and every container group runs an immutable image. The reference is kept in the azd
# environment (WORKER_IMAGE), which main.parameters.json feeds back to Bicep: later `azd provision`
# runs keep the same image instead of resetting it.
#
# Needs: az (signed in; the deployer's own rights build and push), azd, tar, git (optional).
# Set FORCE_WORKER_BUILD=1 to rebuild an existing tag.
set -euo pipefail

cd "$(dirname "$0")/../.."

: "${AZURE_CONTAINER_REGISTRY_NAME:?not set: run azd provision first}"
: "${AZURE_CONTAINER_REGISTRY_ENDPOINT:?not set: run azd provision first}"
: "${AZURE_RESOURCE_GROUP:?not set: run azd provision first}"
: "${AZURE_FUNCTION_APP_NAME:?not set: run azd provision first}"
repository="${WORKER_IMAGE_REPOSITORY:-video-worker}"

if [ ! -f worker/Dockerfile ]; then
  echo "predeploy: worker/Dockerfile is missing" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
context="$work/context"
mkdir -p "$context"

# The build context is what git would commit (tracked and untracked, minus .gitignore'd files):
# no .venv, node_modules or local.settings.json is uploaded. Outside git: the worker's own sources.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files --cached --others --exclude-standard >"$work/all"
  git ls-files --deleted >"$work/deleted"
  grep -vxF -f "$work/deleted" "$work/all" >"$work/files" || true
else
  find worker videojob/__init__.py videojob/contract -type f ! -name '*.pyc' >"$work/files"
fi
tar -cf - -T "$work/files" | tar -xf - -C "$context"

if command -v sha256sum >/dev/null 2>&1; then hash_cmd="sha256sum"; else hash_cmd="shasum -a 256"; fi
# Names and contents of the worker's sources: the same sources give the same tag on any machine.
digest="$(cd "$context" && find worker videojob/__init__.py videojob/contract -type f -print0 | LC_ALL=C sort -z | xargs -0 $hash_cmd | $hash_cmd | cut -c1-16)"
tag="src-$digest"
image="$AZURE_CONTAINER_REGISTRY_ENDPOINT/$repository:$tag"

if [ "${FORCE_WORKER_BUILD:-0}" != "1" ] &&
  az acr repository show --name "$AZURE_CONTAINER_REGISTRY_NAME" --image "$repository:$tag" --output none >/dev/null 2>&1; then
  echo "predeploy: $image already in the registry, not rebuilding"
else
  echo "predeploy: building $image with ACR Tasks"
  az acr build \
    --registry "$AZURE_CONTAINER_REGISTRY_NAME" \
    --image "$repository:$tag" \
    --image "$repository:latest" \
    --file worker/Dockerfile \
    --platform linux/amd64 \
    "$context"
fi

azd env set WORKER_IMAGE "$image"

current="$(az functionapp config appsettings list \
  --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
  --query "[?name=='WORKER_IMAGE'].value | [0]" --output tsv)"
if [ "$current" != "$image" ]; then
  echo "predeploy: setting WORKER_IMAGE on $AZURE_FUNCTION_APP_NAME"
  # --output none: the command would otherwise print every app setting.
  az functionapp config appsettings set \
    --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --settings "WORKER_IMAGE=$image" --output none
fi
echo "predeploy: WORKER_IMAGE=$image"
