# Windows burst worker AMI: Windows Server 2022 with burst-worker as a
# Windows service (through NSSM) that the instance's user-data starts with
# that boot's settings.
#
#   cargo build --release --target x86_64-pc-windows-gnu -p burst-worker
#   packer init images/windows && packer build -var nssm_sha256=... images/windows

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
  default = "t3.medium"
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Subnet of the build instance; null = the default VPC."
}

variable "worker_binary" {
  type        = string
  default     = "target/x86_64-pc-windows-gnu/release/burst-worker.exe"
  description = "burst-worker.exe built for x86_64-pc-windows-gnu (path relative to where packer runs)."
}

variable "nssm_url" {
  type        = string
  default     = "https://nssm.cc/release/nssm-2.24.zip"
  description = "NSSM release archive; NSSM runs the console worker as a service."
}

variable "nssm_sha256" {
  type        = string
  description = "SHA-256 of the archive at nssm_url, checked before it is used."
}

variable "actions_runner_zip" {
  type        = string
  default     = ""
  description = "An actions-runner-win-x64-*.zip to unpack into C:\\actions-runner, for ephemeral GitHub Actions runners (docs/github-actions.md); \"\" = no runner."
}

variable "ami_name_prefix" {
  type    = string
  default = "burst-worker-windows"
}

source "amazon-ebs" "windows" {
  region         = var.region
  instance_type  = var.instance_type
  subnet_id      = var.subnet_id
  ami_name       = "${var.ami_name_prefix}-${formatdate("YYYYMMDD-hhmmss", timestamp())}"
  communicator   = "winrm"
  winrm_username = "Administrator"
  winrm_use_ssl  = true
  winrm_insecure = true
  winrm_timeout  = "20m"
  user_data_file = "${path.root}/bootstrap-winrm.ps1"

  source_ami_filter {
    filters = {
      name                = "Windows_Server-2022-English-Full-Base-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
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
    "burst:image" = "worker-windows"
  }
}

build {
  sources = ["source.amazon-ebs.windows"]

  provisioner "file" {
    source      = var.worker_binary
    destination = "C:\\Windows\\Temp\\burst-worker.exe"
  }

  # A file provisioner cannot be skipped by a variable: without a runner it
  # uploads install.ps1 in its place, which install.ps1 deletes.
  provisioner "file" {
    source      = var.actions_runner_zip != "" ? var.actions_runner_zip : "${path.root}/install.ps1"
    destination = "C:\\Windows\\Temp\\actions-runner.zip"
  }

  provisioner "powershell" {
    script           = "${path.root}/install.ps1"
    environment_vars = ["NSSM_URL=${var.nssm_url}", "NSSM_SHA256=${var.nssm_sha256}", "ACTIONS_RUNNER=${length(var.actions_runner_zip) > 0 ? 1 : 0}"]
  }

  # EC2Launch v2 runs the next instance's user-data at its first boot.
  provisioner "powershell" {
    inline = ["& 'C:/Program Files/Amazon/EC2Launch/ec2launch.exe' reset --block"]
  }
}
