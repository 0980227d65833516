# A burst master's AWS side in the default VPC: worker and master security
# groups, IAM, and launch templates for the AMIs built from images/.
#
#   terraform init && terraform apply -var linux_ami_id=ami-... -var master_id=...

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  description = "Region of the master and its workers."
  type        = string
  default     = "us-east-1"
}

variable "master_id" {
  description = "master_id from the master's <state_dir>/run.json (required)."
  type        = string
}

variable "allowed_instance_types" {
  description = "Instance types the master may launch (the pools' instance_type values)."
  type        = list(string)
  default     = ["t3.micro", "t3.small", "t3.medium", "t3.large"]
}

variable "linux_ami_id" {
  description = "AMI built from images/linux."
  type        = string
  default     = null
}

variable "windows_ami_id" {
  description = "AMI built from images/windows."
  type        = string
  default     = null
}

provider "aws" {
  region = var.region
}

data "aws_vpc" "default" {
  default = true
}

module "burst" {
  source = "../../modules/burst"

  name           = "burst"
  vpc_id         = data.aws_vpc.default.id
  master_id      = var.master_id
  grpc_port      = 8481
  linux_ami_id   = var.linux_ami_id
  windows_ami_id = var.windows_ami_id
  tags           = { project = "burst" }

  allowed_instance_types = var.allowed_instance_types
}

output "pool_config" {
  description = "Paste into the master's config."
  value       = <<-EOT
    [pools.ec2]
    provider = "ec2"
    labels = ["linux", "ec2"]

    [pools.ec2.ec2]
    region = "${var.region}"
    launch_template = { name = "${coalesce(module.burst.linux_launch_template_name, "burst-linux")}" }
    instance_types = ["t3.small", "t3a.small"]
    market = "spot_with_fallback"
  EOT
}

output "master_policy_arn" {
  description = "Attach to the master's role or user."
  value       = module.burst.master_policy_arn
}

output "master_instance_profile_name" {
  description = "Instance profile for a master on EC2."
  value       = module.burst.master_instance_profile_name
}
