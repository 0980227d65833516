# Least privilege for the master: it may only create instances that carry
# the burst tags, tag only while launching, terminate only instances tagged
# with its own id, and pass only the worker role. Workers get a role with no
# permissions at all: they never call AWS.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  allowed_ami_ids = length(var.allowed_ami_ids) > 0 ? var.allowed_ami_ids : ["ami-*"]
  allowed_ami_owners = (length(var.allowed_ami_owners) > 0 ? var.allowed_ami_owners
  : length(var.allowed_ami_ids) > 0 ? ["*"] : [data.aws_caller_identity.current.account_id])
  partition = data.aws_partition.current.partition
  ec2_arn   = "arn:${local.partition}:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name_prefix        = "${var.name}-worker-"
  description        = "burst workers: no AWS permissions"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_instance_profile" "worker" {
  name_prefix = "${var.name}-worker-"
  role        = aws_iam_role.worker.name
  tags        = var.tags
}

data "aws_iam_policy_document" "master" {
  statement {
    sid       = "RunOnlyTaggedInstances"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:volume/*"]
    condition {
      test     = "StringLike"
      variable = "aws:RequestTag/${local.tag_master}"
      values   = [var.master_id]
    }
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.tag_pool}"
      values   = ["false"]
    }
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.tag_worker}"
      values   = ["false"]
    }
    condition {
      test     = "StringLike"
      variable = "ec2:InstanceType"
      values   = var.allowed_instance_types
    }
    # Steps can reach IMDS; only session tokens (IMDSv2) are served.
    condition {
      test     = "StringEquals"
      variable = "ec2:MetadataHttpTokens"
      values   = ["required"]
    }
  }

  statement {
    sid       = "RunOnlyAllowedImages"
    actions   = ["ec2:RunInstances"]
    resources = ["arn:${local.partition}:ec2:${data.aws_region.current.name}::image/*"]
    condition {
      test     = "StringLike"
      variable = "ec2:Owner"
      values   = local.allowed_ami_owners
    }
    condition {
      test     = "StringLike"
      variable = "ec2:ImageID"
      values   = local.allowed_ami_ids
    }
  }

  statement {
    sid     = "RunWithTheseResources"
    actions = ["ec2:RunInstances"]
    resources = [
      "${local.ec2_arn}:subnet/*",
      "${local.ec2_arn}:network-interface/*",
      "${local.ec2_arn}:security-group/*",
      "${local.ec2_arn}:key-pair/*",
      "${local.ec2_arn}:launch-template/*",
      "${local.ec2_arn}:spot-instances-request/*",
    ]
  }

  statement {
    sid       = "TagOnlyWhileLaunching"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:volume/*", "${local.ec2_arn}:spot-instances-request/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:RequestTag/${local.tag_master}"
      values   = [var.master_id]
    }
  }

  statement {
    sid       = "TerminateOnlyOwnInstances"
    actions   = ["ec2:TerminateInstances"]
    resources = ["${local.ec2_arn}:instance/*"]
    condition {
      test     = "StringLike"
      variable = "ec2:ResourceTag/${local.tag_master}"
      values   = [var.master_id]
    }
  }

  statement {
    sid = "DescribeForListAndPrices"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeImages",
      "ec2:DescribeSpotPriceHistory",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "PassOnlyTheWorkerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.worker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }

  statement {
    sid       = "SpotServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "master" {
  name_prefix = "${var.name}-master-"
  description = "burst master: launch, list and terminate its own EC2 workers"
  policy      = data.aws_iam_policy_document.master.json
  tags        = var.tags
}

resource "aws_iam_role" "master" {
  count              = var.create_master_role ? 1 : 0
  name_prefix        = "${var.name}-master-"
  description        = "burst master running on EC2"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "master" {
  count      = var.create_master_role ? 1 : 0
  role       = aws_iam_role.master[0].name
  policy_arn = aws_iam_policy.master.arn
}

resource "aws_iam_instance_profile" "master" {
  count       = var.create_master_role ? 1 : 0
  name_prefix = "${var.name}-master-"
  role        = aws_iam_role.master[0].name
  tags        = var.tags
}
