"""Every setting a deployment manifest gives a service must be one the service reads.

Reads the environment each adloop container gets from rendered Kubernetes manifests (env and envFrom of
ConfigMaps), from the Cloud Run service YAMLs and from Terraform's Cloud Run services (terraform/*.tf, parsed
with python-hcl2), then runs that service's own binary with exactly that
environment and `check-settings`: the service loads its settings as at start-up, and refuses any variable
it does not know (a misspelt name, another service's section). Secret files named by *_FILE variables are
replaced by local files holding placeholder values of the right shape. A deliberately misspelt variable
must be refused too, or the check itself is broken.

usage: check_settings.py BINARIES_DIR TERRAFORM_DIR MANIFEST.yaml [MANIFEST.yaml ...]
"""

import os
import subprocess
import sys
import tempfile

import hcl2
import yaml

SERVICES = ("gateway-api", "ml-service", "capi-relay", "meta-sim")


def placeholder_for(variable: str) -> str:
    if "DATABASE__URL" in variable:
        return "postgres://adloop:placeholder@127.0.0.1:5432/adloop"
    if "REDIS__URL" in variable:
        return "redis://127.0.0.1:6379"
    if variable == "ADLOOP_CONFIG_FILE":
        return '[delivery.pixels."1234567890"]\naccess_token = "placeholder"\n'
    return "placeholder"


def kubernetes_environments(documents):
    """(source, service, {name: value}) for every adloop container in rendered Kubernetes documents."""
    config_maps = {
        document["metadata"]["name"]: document.get("data", {})
        for document in documents
        if document and document.get("kind") == "ConfigMap"
    }
    for document in documents:
        if not document or document.get("kind") != "Deployment":
            continue
        pod = document["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            service = container["image"].split("/")[-1].split(":")[0].split("@")[0]
            if service not in SERVICES:
                continue
            environment = {}
            for source in container.get("envFrom", []):
                reference = source.get("configMapRef")
                if reference is None:
                    raise SystemExit(f"{service}: envFrom other than a ConfigMap is not checked: {source}")
                if reference["name"] not in config_maps:
                    raise SystemExit(f"{service}: ConfigMap {reference['name']} is not in the rendered manifests")
                environment.update(config_maps[reference["name"]])
            for variable in container.get("env", []):
                if "value" in variable:
                    environment[variable["name"]] = variable["value"]
                else:
                    environment[variable["name"]] = "placeholder"
            yield f"Deployment {document['metadata']['name']} container {container['name']}", service, environment


def cloud_run_environments(documents):
    """(source, service, {name: value}) for Cloud Run (Knative) services named adloop-<service>."""
    for document in documents:
        if not document or document.get("kind") != "Service" or "serving.knative.dev" not in document.get("apiVersion", ""):
            continue
        service = document["metadata"]["name"].removeprefix("adloop-")
        for container in document["spec"]["template"]["spec"]["containers"]:
            environment = {}
            for variable in container.get("env", []):
                environment[variable["name"]] = variable.get("value", "placeholder")
            yield f"Cloud Run service {document['metadata']['name']}", service, environment


def first(block):
    """python-hcl2 wraps each attribute value of a locals block in a list."""
    return block[0] if isinstance(block, list) else block


def terraform_environments(terraform_dir):
    """(source, service, {name: value}) for the Cloud Run services terraform/run.tf declares."""
    local_values = {}
    for file_name in sorted(os.listdir(terraform_dir)):
        if file_name.endswith(".tf"):
            with open(os.path.join(terraform_dir, file_name)) as terraform_file:
                for block in hcl2.load(terraform_file).get("locals", []):
                    local_values.update({name: first(value) for name, value in block.items() if not name.startswith("__")})
    services = local_values["services"]
    for service, facts in services.items():
        environment = {"ADLOOP_SERVER__PORT": str(facts["port"]), "ADLOOP_DATABASE__SCHEMA": facts["schema"]}
        for name, value in local_values["service_settings"].get(service, {}).items():
            # Interpolations (another resource's URL) become a value of the same shape.
            environment[name] = "https://placeholder.a.run.app" if "${" in str(value) else str(value)
        for name in local_values["service_secret_files"].get(service, {}):
            environment[name] = f"/secrets/{name}/value"
        yield "Terraform google_cloud_run_v2_service", service, environment


def check(binaries_dir, source, service, environment, secrets_dir):
    process_environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for name, value in environment.items():
        if name == "ADLOOP_CONFIG_FILE" or name.endswith("_FILE"):
            local_path = os.path.join(secrets_dir, f"{service}-{name}")
            with open(local_path, "w") as secret_file:
                secret_file.write(placeholder_for(name))
            process_environment[name] = local_path
        else:
            process_environment[name] = str(value)
    result = subprocess.run(
        [os.path.join(binaries_dir, service), "check-settings"],
        env=process_environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def main():
    binaries_dir, terraform_dir, manifest_paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    checked = 0
    failures = []
    sources = []
    for manifest_path in manifest_paths:
        with open(manifest_path) as manifest:
            documents = list(yaml.safe_load_all(manifest))
        sources.append((manifest_path, list(kubernetes_environments(documents)) + list(cloud_run_environments(documents))))
    sources.append((terraform_dir, list(terraform_environments(terraform_dir))))
    with tempfile.TemporaryDirectory() as secrets_dir:
        for manifest_path, environments in sources:
            for source, service, environment in environments:
                ok, output = check(binaries_dir, source, service, environment, secrets_dir)
                checked += 1
                settings_count = sum(1 for name in environment if name.startswith("ADLOOP_"))
                if ok:
                    print(f"check-settings: {manifest_path}: {source}: {settings_count} settings read by {service}")
                else:
                    failures.append(f"{manifest_path}: {source}: {output}")
                if checked == 1:
                    # The check must be able to fail: a misspelt setting is refused.
                    misspelt = dict(environment, ADLOOP_SERVER__PROT="8080")
                    refused, _ = check(binaries_dir, source, service, misspelt, secrets_dir)
                    if refused:
                        failures.append(f"{service} accepted the misspelt ADLOOP_SERVER__PROT: the check is broken")
    if checked == 0:
        failures.append("no adloop container found in the manifests")
    for failure in failures:
        print(f"check-settings: error: {failure}", file=sys.stderr)
    print(f"check-settings: {checked} containers checked, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
