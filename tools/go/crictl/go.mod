module kovn.local/tools/crictl

go 1.26

require sigs.k8s.io/cri-tools v1.37.0
