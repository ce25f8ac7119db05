fn main() {
    crmflow::hello();
}
