# Linux burst worker AMI: Ubuntu 24.04 with burst-worker as a systemd service
# that the instance's user-data starts with that boot's settings.
#
#   cargo build --release --target x86_64-unknown-linux-musl -p burst-worker
#   packer init images/linux && packer build images/linux

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Subnet of the build instance; null = the default VPC."
}

variable "worker_binary" {
  type        = string
  default     = "target/x86_64-unknown-linux-musl/release/burst-worker"
  description = "burst-worker built for x86_64-unknown-linux-musl (path relative to where packer runs)."
}

variable "step_sudo" {
  type        = bool
  default     = false
  description = "Let build steps (the burst user) use passwordless sudo. Off by default: a step that becomes root can lift the metadata-service block and read the launch user-data."
}

variable "actions_runner_tarball" {
  type        = string
  default     = ""
  description = "An actions-runner-linux-x64-*.tar.gz to unpack into /opt/actions-runner, for ephemeral GitHub Actions runners (docs/github-actions.md); \"\" = no runner."
}

variable "ami_name_prefix" {
  type    = string
  default = "burst-worker-linux"
}

source "amazon-ebs" "ubuntu" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id
  ami_name      = "${var.ami_name_prefix}-${formatdate("YYYYMMDD-hhmmss", timestamp())}"
  ssh_username  = "ubuntu"

  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  # Instances from this AMI default to IMDSv2 only, as does the build box.
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name          = var.ami_name_prefix
    "burst:image" = "worker-linux"
  }
}

build {
  sources = ["source.amazon-ebs.ubuntu"]

  provisioner "file" {
    source      = var.worker_binary
    destination = "/tmp/burst-worker"
  }

  provisioner "file" {
    source      = "${path.root}/../../packaging/systemd/burst-worker.service"
    destination = "/tmp/burst-worker.service"
  }

  # A file provisioner cannot be skipped by a variable: without a runner it
  # uploads install.sh in its place, which install.sh deletes.
  provisioner "file" {
    source      = var.actions_runner_tarball != "" ? var.actions_runner_tarball : "${path.root}/install.sh"
    destination = "/tmp/actions-runner.tar.gz"
  }

  provisioner "shell" {
    script           = "${path.root}/install.sh"
    environment_vars = ["STEP_SUDO=${var.step_sudo ? 1 : 0}", "ACTIONS_RUNNER=${length(var.actions_runner_tarball) > 0 ? 1 : 0}"]
    execute_command  = "sudo {{ .Vars }} sh -eu '{{ .Path }}'"
  }
}
